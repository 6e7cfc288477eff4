"""Shared by the chapter builders: collect cells, then write the notebook without outputs.

Each chapter is generated from a plain Python script beside this file, so it can be
reviewed and diffed as code. A builder does::

    from nbbuild import Chapter

    chapter = Chapter("02_marn.ipynb", "ch2")
    md, code = chapter.md, chapter.code
    md("# Title ...")
    code("print(1)", tags=["parameters"])
    if __name__ == "__main__":
        chapter.write()
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1]


class Chapter:
    """The cells of one chapter notebook, with stable cell ids ``<prefix>-NN``."""

    def __init__(self, filename: str, id_prefix: str):
        self.path = NOTEBOOKS / filename
        self.id_prefix = id_prefix
        self.cells: list[tuple[str, str, list[str]]] = []

    def md(self, text: str) -> None:
        self.cells.append(("markdown", text.strip("\n"), []))

    def code(self, text: str, tags: list[str] | None = None) -> None:
        self.cells.append(("code", text.strip("\n"), tags or []))

    def build(self) -> nbformat.NotebookNode:
        nb = new_notebook()
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "colab": {"provenance": []},
        }
        for i, (kind, source, tags) in enumerate(self.cells):
            cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
            cell.id = f"{self.id_prefix}-{i:02d}"
            if tags:
                cell.metadata["tags"] = tags
            nb.cells.append(cell)
        nbformat.validate(nb)
        return nb

    def write(self) -> None:
        nbformat.write(self.build(), self.path)
        print(f"wrote {self.path} ({len(self.cells)} cells)")
