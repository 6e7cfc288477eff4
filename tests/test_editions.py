"""The book's two editions, built with execution off (as ``make book-check``; a few tens of seconds each).

* the student edition (``_config.yml`` as it is, what ``make book`` publishes) has every exercise of
  a chapter and none of its solutions;
* the instructor edition (``hide_solutions`` off, what ``make book-instructor`` builds) has one
  folded solution (``dropdown``) per exercise;
* a gated solution (``solution-start`` ... ``solution-end``, with a code cell between) disappears
  with its cells from the student edition (book/_ext/wsg_site.py: sphinx-exercise 1.2.1 leaves them
  in the open) and is one folded solution holding the cell in the instructor edition.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "notebooks/02_marn"
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def _exercises_in_source(stem: str) -> int:
    text = (ROOT / "notebooks" / "src" / f"{stem}.md").read_text()
    return len(re.findall(r"^`{3,}\{exercise(?:-start)?\}", text, re.M))


def _build(out: Path, hide_solutions: bool) -> Path:
    """The whole book with the book's _config.yml, execution off (as tests/test_site.py builds it)."""
    out.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["config"]["hide_solutions"] = hide_solutions
    ext = config["sphinx"].get("local_extensions") or {}
    for name, path in ext.items():  # resolved against the config file's folder: make them absolute
        ext[name] = str(ROOT / path)
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out), "--config", str(out / "_config.yml"),
           "-W", "--keep-going"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"build failed:\n{result.stderr[-3000:]}\n{result.stdout[-1500:]}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    base = tmp_path_factory.mktemp("editions")
    return {"student": _build(base / "student", True), "instructor": _build(base / "instructor", False)}


def _classes(html: str, word: str) -> list[str]:
    return [c for c in re.findall(r'class="([^"]*)"', html) if word in c.split()]


def test_student_edition_has_the_exercises_and_no_solution(editions):
    html = (editions["student"] / f"{CHAPTER}.html").read_text()
    exercises = [c for c in _classes(html, "exercise") if "admonition" in c.split()]
    assert len(exercises) == _exercises_in_source(Path(CHAPTER).name) >= 4
    assert not _classes(html, "solution"), "the student edition shows solutions"
    assert "Solution to" not in html and "solution-content" not in html


def test_instructor_edition_folds_one_solution_under_each_exercise(editions):
    html = (editions["instructor"] / f"{CHAPTER}.html").read_text()
    solutions = [c.split() for c in _classes(html, "solution") if "admonition" in c.split()]
    assert len(solutions) == _exercises_in_source(Path(CHAPTER).name)
    assert all("dropdown" in c for c in solutions), "a solution is not folded"


def _mini_book(path: Path) -> None:
    """One chapter: an exercise, a gated solution with a code cell, then a closing paragraph."""
    config = {"title": "Editions", "only_build_toc_files": True, "execute": {"execute_notebooks": "off"},
              "sphinx": {"local_extensions": {"wsg_site": str(ROOT / "book" / "_ext")},
                         "extra_extensions": ["sphinx_exercise"], "config": {"hide_solutions": True}}}
    (path / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: chapter\n")
    (path / "index.md").write_text("# A book\n\nOne chapter.\n")
    md = nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(cells=[
        md("# Chapter\n\n```{exercise} Add two numbers (code)\n:label: mini-ex1\n\nWhat is 1 + 1?\n```\n\n"
           "```{solution-start} mini-ex1\n:class: dropdown\n```\n\nThe gated answer text."),
        nbformat.v4.new_code_cell("answer_cell = 1 + 1"),
        md("```{solution-end}\n```\n\nText after the solution."),
    ])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, path / "chapter.ipynb")


@pytest.mark.parametrize("hide", [True, False], ids=["student", "instructor"])
def test_gated_solutions_follow_the_edition(tmp_path, hide):
    _mini_book(tmp_path)
    extra = [] if hide else ["--config", str(tmp_path / "instructor.yml")]
    if not hide:
        config = yaml.safe_load((tmp_path / "_config.yml").read_text())
        config["sphinx"]["config"]["hide_solutions"] = False
        (tmp_path / "instructor.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run([str(JUPYTER_BOOK), "build", str(tmp_path), "-W", "--keep-going", *extra],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"build failed:\n{result.stderr[-3000:]}\n{result.stdout[-1500:]}"
    html = (tmp_path / "_build" / "html" / "chapter.html").read_text()
    assert "What is 1 + 1?" in html and "Text after the solution." in html
    if hide:
        assert "gated answer" not in html and "answer_cell" not in html, "a hidden gated solution leaks"
        assert not _classes(html, "solution")
    else:
        solution = html[html.index('class="solution'):]
        assert "gated answer" in solution and "answer_cell" in solution
        assert "dropdown" in _classes(html, "solution")[0].split()
