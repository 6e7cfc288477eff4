"""Every chapter is a jupytext pair: notebooks/NN_x.ipynb <-> notebooks/src/NN_x.md (MyST Markdown).

The .md is what contributors edit and review (prose reads as prose, code cells are
``{code-cell}`` blocks with their tags); the .ipynb is what Colab, nbval and the book
execute. After editing one side, ``jupytext --sync notebooks/src/NN_x.md`` (or the
.ipynb) updates the other; this test fails when they disagree.
"""
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_chapter_has_a_source_and_every_source_a_chapter():
    sources = sorted(p.stem for p in (NOTEBOOKS / "src").glob("*.md"))
    assert CHAPTERS and sources == [p.stem for p in CHAPTERS]


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_and_source_are_in_sync(notebook):
    ipynb = nbformat.read(notebook, as_version=4)
    source = jupytext.read(NOTEBOOKS / "src" / f"{notebook.stem}.md")
    assert ipynb.metadata.get("jupytext", {}).get("formats") == "ipynb,src//md:myst", \
        f"{notebook.name} is not paired: jupytext --set-formats 'ipynb,src//md:myst' {notebook}"
    mine, theirs = _cells(ipynb), _cells(source)
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert a == b, f"{notebook.name} cell {i} differs from src/{notebook.stem}.md: run jupytext --sync"
    assert len(mine) == len(theirs), f"{notebook.name}: {len(mine)} cells vs {len(theirs)} in the source"
