"""The Colab copies of the chapters (``colab/NN_x.ipynb``, written by ``book/colab.py``).

Colab renders Markdown, not MyST. The copies are committed, so they are checked like a
jupytext pair: each equals what the converter writes from the current notebook. Their
Markdown carries no MyST role or directive, every exercise solution is folded in
``<details>``, and their set-up cell installs the book's release, whose version agrees
with pyproject.toml, CHANGELOG.md and CITATION.cff. The book's Colab launch buttons open
the copies (checked on a two-chapter build with execution off, a few seconds).
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


colab = _load("wsg_book_colab", ROOT / "book" / "colab.py")
wsg_site = _load("wsg_site_ext", ROOT / "book" / "_ext" / "wsg_site.py")

# What Colab would print raw: a role (``{name}`...```, content included so that a role is not
# mistaken for a code span) outside code spans, a directive fence, a MyST target or comment.
ROLE_OR_CODE = re.compile(r"(?P<role>\{[A-Za-z][\w:+.-]*\}`[^`]*`)|(?P<code>(`+)[^`](?:.*?[^`])?\3(?!`))", re.S)
DIRECTIVE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*\{", re.M)
MYST_LINE = re.compile(r"^\s*(\([^()\s]+\)=\s*|%.*|\+\+\+\s*)$", re.M)
MATH_LABEL = re.compile(r"\$\$\s*\([^()\s]+\)")


def myst_left(markdown: str) -> list[str]:
    """The MyST constructs in a Markdown text that Colab would show as raw text."""
    found = [m.group("role") for m in ROLE_OR_CODE.finditer(markdown) if m.group("role")]
    found += [m.group(0).strip() for m in DIRECTIVE.finditer(markdown)]
    found += [m.group(0).strip() for m in MYST_LINE.finditer(markdown)]
    found += MATH_LABEL.findall(markdown)
    return found


def markdown_of(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


@pytest.fixture(scope="module")
def converter():
    return colab.Converter(ROOT)


@pytest.fixture(scope="module")
def copies() -> dict[str, nbformat.NotebookNode]:
    return {p.stem: nbformat.read(ROOT / "colab" / p.name, as_version=4) for p in CHAPTERS
            if (ROOT / "colab" / p.name).is_file()}


# --------------------------------------------------------------------------- the copies
def test_every_chapter_has_a_copy_and_every_copy_a_chapter():
    copies = sorted(p.name for p in (ROOT / "colab").glob("*.ipynb"))
    assert CHAPTERS and copies == [p.name for p in CHAPTERS], "run `make colab` (.venv/bin/python book/colab.py)"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_copy_is_up_to_date(notebook, converter):
    copy = ROOT / "colab" / notebook.name
    assert copy.is_file() and copy.read_text() == converter.render(notebook), \
        f"colab/{notebook.name} is out of date with notebooks/{notebook.name}: run `make colab`"


def test_no_myst_survives_in_the_copies(copies):
    assert len(copies) == len(CHAPTERS)
    for stem, nb in copies.items():
        for source in markdown_of(nb):
            left = myst_left(source)
            assert not left, f"colab/{stem}.ipynb: MyST left for Colab to print raw: {left[:5]}"


def test_the_checker_sees_myst_and_the_chapters_use_it():
    """The check above would fail on MyST: the chapters are full of it, code spans are exempt."""
    assert myst_left("MARN {cite}`marn2020` and a {term}`moment`") == ["{cite}`marn2020`", "{term}`moment`"]
    assert myst_left("```{exercise} A\n:label: x\n```") and myst_left(":::{note}\nx\n:::")
    assert myst_left("(sec-x)=\n# X") and myst_left("$$\nx\n$$ (eq-x)")
    assert not myst_left("Chapters link with the `{term}` role; `{cite}`x`` is written so.")
    assert all(sum(len(myst_left(s)) for s in markdown_of(nbformat.read(p, as_version=4))) > 10 for p in CHAPTERS)


def _solutions(source: str) -> list[list[str]]:
    """The bodies (lines) of the ``{solution}`` directives of a MyST text."""
    lines, bodies, i = source.split("\n"), [], 0
    while i < len(lines):
        m = re.match(r"^\s*(`{3,}|:{3,})\{solution\}", lines[i])
        if not m:
            i += 1
            continue
        fence = m.group(1)
        end = next(j for j in range(i + 1, len(lines))
                   if re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]))
        bodies.append([x for x in lines[i + 1:end] if not re.match(r"^\s*:[\w-]+:", x)])
        i = end + 1
    return bodies


def test_every_solution_is_folded(copies):
    total = 0
    for notebook in CHAPTERS:
        source_md = "\n\n".join(markdown_of(nbformat.read(notebook, as_version=4)))
        copy_md = "\n\n".join(markdown_of(copies[notebook.stem]))
        solutions = _solutions(source_md)
        assert solutions, f"{notebook.stem}: no solutions found in the chapter"
        opened = [m.start() for m in re.finditer(r"<details>\s*<summary>Solution", copy_md)]
        closed = [m.start() for m in re.finditer(r"</details>", copy_md)]
        assert len(opened) == len(solutions) == len(closed), \
            f"{notebook.stem}: {len(solutions)} solutions, {len(opened)} folded, {len(closed)} closed"
        folds = list(zip(opened, closed))
        assert all(a < b for a, b in folds) and all(b < a for (_, b), (a, _) in zip(folds, folds[1:]))
        for body in solutions:
            # a line of the solution that the conversion leaves as it is (no role, no directive)
            plain = [x.strip() for x in body if len(x.strip()) > 30 and "{" not in x and "`" not in x]
            assert plain, f"{notebook.stem}: no plain line in a solution: {body[:3]}"
            line = max(plain, key=len)
            where = [m.start() for m in re.finditer(re.escape(line), copy_md)]
            assert where, f"{notebook.stem}: solution line missing from the copy: {line!r}"
            assert all(any(a < w < b for a, b in folds) for w in where), \
                f"{notebook.stem}: a solution is in the open in the Colab copy: {line!r}"
        gated = len(re.findall(r"^\s*(`{3,}|:{3,})\{solution-start\}", source_md, flags=re.M))
        marked = len(re.findall(r"^\*\*Solution to Exercise \d+\.\d+\*\* \(try the exercise first", copy_md,
                                flags=re.M))
        assert marked == gated, f"{notebook.stem}: {gated} solutions with code cells, {marked} marked in the copy"
        total += len(solutions) + gated
    assert total >= 30


def test_exercises_are_numbered_headings(copies):
    for notebook in CHAPTERS:
        n_exercises = len(re.findall(r"^\s*(`{3,}|:{3,})\{exercise\}", "\n".join(
            markdown_of(nbformat.read(notebook, as_version=4))), flags=re.M))
        headings = re.findall(r"^#{2,6} Exercise (\d+)\.(\d+): \S", "\n".join(markdown_of(copies[notebook.stem])),
                              flags=re.M)
        number = int(notebook.name[:2])
        assert headings == [(str(number), str(k)) for k in range(1, n_exercises + 1)], notebook.stem


def test_code_cells_are_unchanged_and_without_outputs(copies):
    for notebook in CHAPTERS:
        source, copy = nbformat.read(notebook, as_version=4), copies[notebook.stem]
        code = [(c.id, c.source, c.metadata.get("tags", [])) for c in source.cells if c.cell_type == "code"]
        added = [c for c in copy.cells if "colab-glued" in c.metadata.get("tags", [])]
        assert all(c.source.startswith("wsg.viz.glued(") for c in added), f"{notebook.stem}: an added cell"
        assert [(c.id, c.source, c.metadata.get("tags", [])) for c in copy.cells
                if c.cell_type == "code" and c not in added] == code
        for cell in copy.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{notebook.stem}: outputs kept"
        assert "jupytext" not in copy.metadata, f"{notebook.stem}: the copy must not be paired"


def test_citations_become_linked_author_year_text(copies):
    text = "\n".join(markdown_of(copies["02_marn"]))
    assert "([Song et al., 2020](https://arxiv.org/abs/2003.07048))" in text
    assert "[Hochreiter and Schmidhuber, 1997](" in text
    fian = "\n".join(markdown_of(copies["06_fian"]))
    assert "[Qu et al., 2020](https://doi.org/10.1145/3394171.3414053)" in fian
    assert "## Works cited in this chapter" in copies["02_marn"].cells[-1].source
    assert "Jürgen Schmidhuber" in copies["02_marn"].cells[-1].source


def test_setup_cell_installs_the_release(copies):
    line = colab.colab_install_line(ROOT)
    assert line.endswith(f'@v{colab.project_version(ROOT)}"')
    for stem, nb in copies.items():
        code = [c for c in nb.cells if c.cell_type == "code"]
        setup = [c for c in code if colab.is_setup_cell(c)]
        assert len(setup) == 1 and setup[0] is code[0], f"colab/{stem}.ipynb: the set-up cell is not the first code cell"
        assert line in setup[0].source and "import wsg" in setup[0].source, f"colab/{stem}.ipynb: {setup[0].source}"


# ------------------------------------------------------------------- the converter itself
def convert(converter, text: str, chapter: int = 2) -> str:
    converter.state = colab.ChapterState("test", chapter)
    return converter.markdown(text)


def test_converter_renders_each_construct(converter):
    converter.labels["eq-test"] = colab.Target("equation", 2, "1", "")
    converter.labels["sec-test"] = colab.Target("section", 3, "", "A section")
    text = "\n".join([
        "# Title", "",
        "(sec-here)=", "% a MyST comment", "",
        "A {cite:t}`marn2020` and {cite}`fian2020,tall2017`, a {term}`blind baselines <blind baseline>`,",
        "{math}`x^2`, {eq}`eq-test`, {ref}`sec-test`, {numref}`marn-ex2` and {ref}`the one <marn-ex1>`,",
        "see {doc}`../book/glossary` and `{cite}` in code.", "",
        "$$", "a = b", "$$ (eq-here)", "",
        ":::{exercise} A colon-fenced one",
        ":label: test-ex",
        "Do {term}`IoU`.", ":::", "",
        "````{solution} marn-ex1", ":class: dropdown", "Answer.", "", "```python", "x = {'a': 1}", "```", "````", "",
        "```{admonition} Learning objectives", ":class: tip", "", "- one", "- two", "```", "",
        "```{note} Careful.", "```",
    ])
    out = convert(converter, text)
    assert not myst_left(out), myst_left(out)
    assert "[Song et al. (2020)](https://arxiv.org/abs/2003.07048)" in out
    assert "([Qu et al., 2020](https://doi.org/10.1145/3394171.3414053); [Gao et al., 2017](" in out
    assert "a blind baselines," in out and "$x^2$" in out and "(1)" in out
    assert "A section of Chapter 3" in out and "Exercise 2.2" in out and "the one" in out
    assert "[Glossary](https://github.com/wsg-book/wsg/blob/v" in out and "`{cite}` in code" in out
    assert "$$\na = b\n\\tag{1}\n$$" in out
    assert "## Exercise 2.1: A colon-fenced one\n\nDo IoU." in out
    assert "<details>\n<summary>Solution to Exercise 2.1</summary>\n\nAnswer.\n\n```python\nx = {'a': 1}\n```\n\n</details>" in out
    assert "> **Learning objectives**\n>\n> - one\n> - two" in out
    assert "> **Note**\n>\n> Careful." in out
    assert "sec-here" not in out and "MyST comment" not in out


def test_converter_refuses_what_it_cannot_render(converter):
    with pytest.raises(ValueError, match="list-table"):
        convert(converter, "```{list-table}\n* - a\n```")
    with pytest.raises(ValueError, match="unknownrole"):
        convert(converter, "a {unknownrole}`x`")


def test_converter_runs_from_the_command_line():
    result = subprocess.run([sys.executable, str(ROOT / "book" / "colab.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert colab.__doc__ and "Colab" in colab.__doc__


# ------------------------------------------------------------------------- versions
def _changelog_versions() -> list[tuple[str, str]]:
    text = (ROOT / "CHANGELOG.md").read_text()
    return re.findall(r"^## \[(\d+\.\d+\.\d+[^\]]*)\] - (\d{4}-\d{2}-\d{2})", text, flags=re.M)


def test_release_versions_agree():
    version = colab.project_version(ROOT)
    for path in CHAPTERS + sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.md")):
        tags = re.findall(r'%pip install -q "wsg-book @ git\+https://github\.com/wsg-book/wsg@v([^"]+)"',
                          path.read_text().replace('\\"', '"'))
        assert tags == [version], f"{path.relative_to(ROOT)}: the Colab cell installs {tags}, pyproject says {version}"
    changelog = _changelog_versions()
    assert changelog and changelog[0][0] == version, f"CHANGELOG.md's newest release {changelog[:1]}, not {version}"
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(citation["version"]) == version
    assert str(citation["date-released"]) == changelog[0][1], "CITATION.cff and CHANGELOG.md date the release differently"
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    assert citation["repository-code"] == colab.repository_url(ROOT)
    assert citation["authors"] and all("name" in a or "family-names" in a for a in citation["authors"])
    readme = (ROOT / "README.md").read_text()
    assert f"v{version}" in readme and "CHANGELOG.md" in readme and "CITATION.cff" in readme


# --------------------------------------------------------------------- launch buttons
def test_launch_handler_rewrites_the_colab_link(tmp_path):
    (tmp_path / "colab").mkdir()
    (tmp_path / "colab" / "02_marn.ipynb").write_text("{}")
    app = SimpleNamespace(srcdir=str(tmp_path), config=SimpleNamespace(
        html_theme_options={"launch_buttons": {"colab_url": "https://colab.research.google.com"}}))
    base = "https://colab.research.google.com/github/o/r/blob/main/"
    binder = "https://mybinder.org/v2/gh/o/r/main?urlpath=tree/notebooks/02_marn.ipynb"

    def context(page):
        return {"header_buttons": [{"type": "group", "label": "launch-buttons", "buttons": [
            {"type": "link", "text": "Binder", "url": binder},
            {"type": "link", "text": "Colab", "url": f"{base}{page}.ipynb"}]}]}

    ctx = context("notebooks/02_marn")
    wsg_site.colab_launch_to_copy(app, "notebooks/02_marn", "page.html", ctx, None)
    assert [b["url"] for b in ctx["header_buttons"][0]["buttons"]] == [binder, f"{base}colab/02_marn.ipynb"]
    ctx = context("notebooks/03_wsra")  # no copy: left alone
    wsg_site.colab_launch_to_copy(app, "notebooks/03_wsra", "page.html", ctx, None)
    assert ctx["header_buttons"][0]["buttons"][1]["url"] == f"{base}notebooks/03_wsra.ipynb"


def test_built_pages_launch_the_colab_copies(tmp_path):
    """A two-chapter book built with the book's own repository, launch-button and extension
    settings (execution off, a few seconds): a chapter with a Colab copy launches the copy, one
    without keeps the theme's link. tests/test_site.py checks the links of the whole book."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    mini = {key: config[key] for key in ("title", "repository", "launch_buttons", "html")}
    mini["only_build_toc_files"] = True
    mini["execute"] = {"execute_notebooks": "off"}
    mini["sphinx"] = {"local_extensions": {name: str(ROOT / path)
                                           for name, path in config["sphinx"]["local_extensions"].items()}}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(mini, sort_keys=False))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n"
                                       "  - file: notebooks/01_a\n  - file: notebooks/02_b\n")
    (tmp_path / "index.md").write_text("# A book\n\nTwo chapters.\n")
    for folder in ("notebooks", "colab"):
        (tmp_path / folder).mkdir()
    for stem in ("01_a", "02_b"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# Chapter {stem}\n\nText."),
                                             nbformat.v4.new_code_cell("1 + 1")])
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        nbformat.write(nb, tmp_path / "notebooks" / f"{stem}.ipynb")
    nbformat.write(nb, tmp_path / "colab" / "01_a.ipynb")  # only the first chapter has a copy
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", str(tmp_path), "-W", "--keep-going"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"book build failed:\n{result.stderr[-3000:]}\n{result.stdout[-1500:]}"
    repo = config["repository"]
    org_repo = repo["url"].split("github.com/")[-1].strip("/")
    colab_url = config["launch_buttons"]["colab_url"].rstrip("/")
    base = f"{colab_url}/github/{org_repo}/blob/{repo['branch']}/"
    html = tmp_path / "_build" / "html"
    for stem, want in (("01_a", f"{base}colab/01_a.ipynb"), ("02_b", f"{base}notebooks/02_b.ipynb")):
        page = (html / "notebooks" / f"{stem}.html").read_text()
        links = set(re.findall(rf'href="({re.escape(colab_url)}/[^"]*)"', page))
        assert links == {want}, f"{stem}: Colab links {links}, want {want}"
    assert not (html / "colab").exists(), "a Colab copy must not become a page of the book"
