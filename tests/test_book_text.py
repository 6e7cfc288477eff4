"""The chapters' text, read as a student reads it: one voice, one notation, one definition of
noise, terms linked, figures captioned, and no measured number typed by hand.

Each check parses the chapters' MyST sources (notebooks/src/*.md) with jupytext, so it sees the
same cells the book executes. What counts as a *measured-looking number* (``_MEASURED``): any
``x ± y``; a decimal next to ``R@``, ``mIoU`` or "recall"; a decimal percentage; "<n> points" or "pp".
(Whole percentages such as "25 % of the labels" are settings, and pass.) Such a
number must be rendered by a cell (``{glue:text}``), except in a paragraph that cites the paper it
comes from (``{cite}``, ``{cite:p}``, ``{cite:t}``): a paper's reported value carries its citation.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.md"))
BOOK_PAGES = sorted((ROOT / "book").glob("*.md"))
NOTATION = (ROOT / "book" / "notation.md").read_text()
GLOSSARY = (ROOT / "book" / "glossary.md").read_text()

#: words a student would read as the project's history, not the subject
HISTORY = [r"\bissue\s*#?\d+", r"earlier versions?\b", r"previous versions?\b", r"\bwe used to\b",
           r"\bthe old (rule|version|code|recipe)\b", r"\bwas changed to\b"]
#: the retired ways of saying "within noise" / "separated" and of naming the strong bar
RETIRED = ["intervals overlap", "intervals do not overlap", "non-overlapping", "smaller than the seed spread",
           "inside the noise", "out of the noise", "outside the noise", "stands out of", "bar of the book",
           "book's bar", "evidence standard"]
#: terms every chapter links at its first use (book/glossary.md)
TERMS = ["chance among events", "swapped-query control", "query-blind variant", "event hit", "preset",
         "recipe", "results store", "snippet", "strong bar", "within noise"]
MAIN_LINE_WORDS = 4500

_MEASURED = re.compile(
    r"\d+(?:\.\d+)?\s*(?:±|\\pm)\s*\d"                                        # 12.3 ± 4.5
    r"|(?:R@\d+[^.\d]{0,25}?|mIoU[^.\d]{0,25}?|recall[^.\d]{0,25}?)\b\d+\.\d+(?!\s*(?:\)|,)?\s*IoU)"
    r"|\b\d+\.\d+\s*%|\b\d+(?:\.\d+)?\s*(?:points?\b|pp\b)",             # 3.1 %, 5 points, 12 pp
    re.IGNORECASE)
#: settings that look like numbers: IoU thresholds, recall ranks
_SETTINGS = re.compile(r"(?:IoU\s*(?:=|≥|>|>=|\\ge|\\geq)\s*|R@)\d+(?:\.\d+)?|\d+\.\d+\s*(?:IoU)", re.IGNORECASE)


def _cells(path: Path):
    return jupytext.read(path).cells


def _prose(path: Path) -> str:
    """The chapter's Markdown cells, with inline code, math and roles' targets removed."""
    text = "\n\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")
    return text


def _drop_code_blocks(text: str) -> str:
    """Remove fenced code blocks (```python ...) but keep directive bodies (```{solution} ...)."""
    out, fence = [], None
    for line in text.splitlines():
        m = re.match(r"\s*(`{3,}|~{3,})(.*)", line)
        if fence is not None:
            if m and m.group(1) == fence and not m.group(2).strip():
                fence = None
            continue
        if m and m.group(2).strip() and not m.group(2).strip().startswith("{"):
            fence = m.group(1)
            continue
        out.append(line)
    return "\n".join(out)


def _strip(text: str) -> str:
    """Prose only: no code blocks, inline code or glued values; math reduced to its ± numbers."""
    text = _drop_code_blocks(text)
    pm = r"\d+(?:\.\d+)?\s*\\pm\s*\d+(?:\.\d+)?"
    keep_pm = lambda m: " ".join(re.findall(pm, m.group(0))) or " "  # noqa: E731 (a typed x ± y in math)
    text = re.sub(r"\$\$[\s\S]*?\$\$", keep_pm, text)
    text = re.sub(r"\$[^$\n]+\$", keep_pm, text)
    text = re.sub(r"\{glue:[a-z]+\}`[^`]*`", " GLUED ", text)
    # inline code goes; a role ({term}`...`, {cite}`...`) stays whole, its backticks are not code
    text = re.sub(r"(\{[\w:-]+\}`[^`]*`)|`[^`\n]*`", lambda m: m.group(1) or " ", text)
    return text


def _main_line(path: Path) -> str:
    """Markdown outside "Going deeper" sections, exercises, solutions and dropdowns."""
    keep, skip_section, gated = [], False, False
    for cell in _cells(path):
        if cell.cell_type != "markdown":
            continue
        for block in re.split(r"(?m)^(?=#{1,2} )", cell.source):
            heading = re.match(r"#{1,2} (.*)", block)
            if heading:
                skip_section = heading.group(1).strip().lower().startswith("going deeper")
            if skip_section:
                continue
            if "{solution-start}" in block:
                gated = True
            if gated:
                gated = "{solution-end}" not in block
                continue
            block = re.sub(r"(`{3,}|:{3,})\{(exercise|solution|dropdown|admonition)\}[\s\S]*?\n\1\s*(\n|$)", " ", block)
            keep.append(block)
    return "\n".join(keep)


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z][A-Za-z'-]*", _strip(text)))


ids = [p.stem for p in SOURCES]


@pytest.mark.parametrize("source", SOURCES + BOOK_PAGES, ids=lambda p: p.stem)
def test_no_project_history_in_the_text(source):
    text = source.read_text()
    hits = [(m.group(0), text[:m.start()].count("\n") + 1) for pat in HISTORY
            for m in re.finditer(pat, text, re.IGNORECASE)]
    assert not hits, f"{source.name}: history wording (word, line): {hits}"


@pytest.mark.parametrize("source", SOURCES + BOOK_PAGES, ids=lambda p: p.stem)
def test_one_definition_of_noise_and_one_name_for_the_bar(source):
    text = source.read_text().lower()
    hits = [(p, text[:text.index(p)].count("\n") + 1) for p in RETIRED if p in text]
    assert not hits, f"{source.name}: retired phrasing (say 'within noise' / 'separated' / 'the strong bar'): {hits}"


def _symbols_box(text: str):
    boxes = re.findall(r"\{admonition\} Symbols in this chapter\n([\s\S]*?)\n(?::::|```)", text)
    return boxes


@pytest.mark.parametrize("source", SOURCES, ids=ids)
def test_symbols_box_is_in_the_notation_table_or_local(source):
    boxes = _symbols_box(source.read_text())
    assert len(boxes) == 1, f"{source.name}: needs exactly one 'Symbols in this chapter' box, found {len(boxes)}"
    rows = [r for r in boxes[0].splitlines() if r.startswith("|") and "---" not in r]
    assert len(rows) >= 2, f"{source.name}: the symbols box has no rows"
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        symbol, scope = cells[0], cells[-1]
        assert scope in ("shared", "local"), f"{source.name}: scope of {symbol} is {scope!r}, not shared/local"
        if scope == "shared":
            assert symbol in NOTATION, f"{source.name}: {symbol} is marked shared but is not in book/notation.md"


def _glossary_terms() -> list[str]:
    """The terms of book/glossary.md's {glossary} directive: its unindented lines."""
    body = GLOSSARY.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    return [line.strip() for line in body.splitlines()
            if line.strip() and not line[0].isspace() and not line.startswith(":")]


def test_glossary_holds_the_books_own_terms():
    defined = [t.lower() for t in _glossary_terms()]
    missing = [t for t in TERMS if t not in defined]
    assert not missing, f"book/glossary.md lacks {missing}"


_TERM_LINK = re.compile(r"\{term\}`(?:[^`<]*<)?([^`>]+)>?`")


def test_every_glossary_term_is_linked_somewhere():
    linked = {m.group(1).strip().lower() for p in SOURCES + BOOK_PAGES for m in _TERM_LINK.finditer(p.read_text())}
    unlinked = [t for t in _glossary_terms() if t.lower() not in linked]
    assert not unlinked, f"glossary terms no page links with {{term}}: {unlinked}"


@pytest.mark.parametrize("source", SOURCES, ids=ids)
def test_terms_are_linked_at_first_use(source):
    prose = _strip(_prose(source))
    bad = []
    for term in TERMS:
        plain = re.sub(r"\{term\}`[^`]*`", lambda m: "", prose)
        uses = [m.start() for m in re.finditer(re.escape(term), prose, re.IGNORECASE)]
        if not re.search(re.escape(term), plain, re.IGNORECASE) and not uses:
            continue
        links = [m.start() for m in _TERM_LINK.finditer(prose) if m.group(1).strip().lower() == term]
        if not links or (uses and uses[0] < links[0] and not prose[:uses[0]].endswith(("{term}`", "<"))):
            bad.append(term)
    assert not bad, f"{source.name}: link these terms with {{term}} at their first use: {bad}"


@pytest.mark.parametrize("source", SOURCES, ids=ids)
def test_every_figure_has_a_number_a_caption_and_alt_text(source):
    text = source.read_text()
    glued = re.findall(r"glue\(\s*[\"'](fig-[\w-]+)[\"']", text)
    shown = re.findall(r"```\{glue:figure\} (fig-[\w-]+)\n((?::[\w-]+:.*\n)*)\n?([\s\S]*?)\n```", text)
    by_name = {name: (opts, caption) for name, opts, caption in shown}
    problems = []
    for name in glued:
        if name not in by_name:
            problems.append(f"{name}: glued but no {{glue:figure}} shows it")
            continue
        opts, caption = by_name[name]
        if f":name: {name}" not in opts:
            problems.append(f"{name}: no :name: (figure numbers need it)")
        if ":alt:" not in opts:
            problems.append(f"{name}: no :alt: text")
        if len(caption.split()) < 6:
            problems.append(f"{name}: caption too short to say what to see")
    for cell in _cells(source):
        if cell.cell_type != "code" or "explorer(" in cell.source:
            continue
        draws = re.search(r"(?m)^[^\s#].*\b(plt\.subplots|plt\.figure|wsg\.viz\.(timeline|heatmap|training_curves))\(",
                          cell.source)
        if draws and "glue(" not in cell.source:
            problems.append(f"a cell draws a figure without glue: {cell.source.splitlines()[0][:70]!r}")
        if draws and "remove-output" not in cell.metadata.get("tags", []):
            problems.append(f"a figure cell is not tagged remove-output: {cell.source.splitlines()[0][:70]!r}")
    assert not problems, f"{source.name}:\n  " + "\n  ".join(problems)


def _paragraphs(text: str):
    return re.split(r"\n\s*\n", text)


@pytest.mark.parametrize("source", SOURCES, ids=ids)
def test_no_measured_number_is_typed(source):
    typed = []
    for para in _paragraphs(_strip(_prose(source))):
        if "{cite" in para:
            continue  # a paper's reported values, with their citation
        clean = _SETTINGS.sub(" ", para)
        typed += [m.group(0) for m in _MEASURED.finditer(clean)]
    assert not typed, (f"{source.name}: measured-looking numbers typed in the text (glue them from the cell "
                       f"that computes them, or cite the paper in the same paragraph): {typed}")


@pytest.mark.parametrize("source", SOURCES, ids=ids)
def test_main_line_fits_its_budget(source):
    words = _words(_main_line(source))
    print(f"{source.stem}: main line {words} words (all Markdown {_words(_prose(source))})")
    assert words <= MAIN_LINE_WORDS, (f"{source.name}: the main line has {words} words (budget {MAIN_LINE_WORDS}); "
                                      "move diagnostics into 'Going deeper' sections")
