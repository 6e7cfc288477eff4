"""The course material: learning objectives, exercises and summaries of every chapter, and the syllabus.

Cheap: reads the chapters' MyST sources and ``book/course.md``, executes nothing.

* every chapter opens with one ``{admonition} Learning objectives`` of 3-5 bullets, before its
  first section;
* every chapter has at least four ``{exercise}`` blocks, each with a ``:label:``, a kind in its
  title, e.g. ``(derivation)``, and a ``{solution}`` drop-down (``:class: dropdown``); the kinds
  of a chapter include a derivation, a code exercise, an experiment and a critique;
* every chapter ends with ``## Summary`` before ``## References``;
* ``book/course.md`` is in ``_toc.yml`` (its own unnumbered part, before the appendices), has
  twelve weeks each with an assignment, and every exercise label and document it names exists.
"""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.md"))
COURSE = ROOT / "book" / "course.md"
KINDS = {"derivation", "code", "experiment", "critique", "design"}
REQUIRED_KINDS = {"derivation", "code", "experiment", "critique"}

EXERCISE = re.compile(r"^(`{3,})\{exercise\}[ \t]*(?P<title>[^\n]*)\n(?P<body>.*?)^\1[ \t]*$", re.M | re.S)
SOLUTION = re.compile(r"^(`{3,})\{solution\}[ \t]*(?P<label>\S+)[ \t]*\n(?P<body>.*?)^\1[ \t]*$", re.M | re.S)
OBJECTIVES = re.compile(r"^(`{3,})\{admonition\} Learning objectives\n(?P<body>.*?)^\1\s*$", re.M | re.S)


def _option(body: str, name: str) -> str | None:
    m = re.search(rf"^:{name}:[ \t]*(\S.*?)[ \t]*$", body, re.M)
    return m.group(1) if m else None


def exercises(text: str) -> list[dict]:
    """Every exercise of a MyST source: title, kind, label."""
    out = []
    for m in EXERCISE.finditer(text):
        title = m.group("title").strip()
        kind = re.search(r"\((\w+)\)$", title)
        out.append({"title": title, "kind": kind.group(1) if kind else None,
                    "label": _option(m.group("body"), "label")})
    return out


def solutions(text: str) -> dict[str, str | None]:
    """Solution label -> its ``:class:``."""
    return {m.group("label"): _option(m.group("body"), "class") for m in SOLUTION.finditer(text)}


def all_labels() -> set[str]:
    return {e["label"] for p in SOURCES for e in exercises(p.read_text())}


def test_there_are_chapters():
    assert len(SOURCES) >= 6, SOURCES


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_learning_objectives_open_the_chapter(source):
    text = source.read_text()
    found = list(OBJECTIVES.finditer(text))
    assert len(found) == 1, f"{source.name}: expected one ```{{admonition}} Learning objectives block, found {len(found)}"
    first_section = re.search(r"^## ", text, re.M)
    assert first_section and found[0].start() < first_section.start(), \
        f"{source.name}: the learning objectives must come before the first section"
    bullets = re.findall(r"^- ", found[0].group("body"), re.M)
    assert 3 <= len(bullets) <= 5, f"{source.name}: {len(bullets)} learning objectives (3-5 expected)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_exercises_have_labels_kinds_and_dropdown_solutions(source):
    text = source.read_text()
    found = exercises(text)
    sols = solutions(text)
    assert len(found) >= 4, f"{source.name}: {len(found)} exercises (at least 4 expected)"
    for e in found:
        assert e["label"], f"{source.name}: exercise {e['title']!r} has no :label:"
        assert e["kind"] in KINDS, f"{source.name}: {e['label']} title {e['title']!r} lacks a kind {sorted(KINDS)}"
        assert e["label"] in sols, f"{source.name}: {e['label']} has no {{solution}}"
        assert sols[e["label"]] == "dropdown", f"{source.name}: the solution of {e['label']} is not a dropdown"
    missing = REQUIRED_KINDS - {e["kind"] for e in found}
    assert not missing, f"{source.name}: no exercise of kind {sorted(missing)}"


def test_exercise_labels_are_unique():
    labels = [e["label"] for p in SOURCES for e in exercises(p.read_text())]
    assert len(labels) == len(set(labels)), sorted(lab for lab in labels if labels.count(lab) > 1)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_summary_before_references(source):
    heads = re.findall(r"^## (.+?)\s*$", source.read_text(), re.M)
    assert "Summary" in heads, f"{source.name}: no '## Summary'"
    assert "References" in heads and heads.index("Summary") < heads.index("References"), \
        f"{source.name}: '## Summary' must come before '## References'"


def test_course_is_its_own_unnumbered_part_before_the_appendices():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = toc["parts"]
    where = [i for i, p in enumerate(parts) if any(c.get("file") == "book/course" for c in p["chapters"])]
    assert len(where) == 1, "book/course is not in _toc.yml (or is there twice)"
    part = parts[where[0]]
    assert not part.get("numbered", False) and len(part["chapters"]) == 1
    appendices = [i for i, p in enumerate(parts) if p.get("caption") == "Appendices"]
    assert appendices and where[0] < appendices[0]


def test_course_has_twelve_weeks_each_with_an_assignment():
    text = COURSE.read_text()
    weeks = re.split(r"^### (?=Week \d+)", text, flags=re.M)[1:]
    numbers = [int(re.match(r"Week (\d+)", w).group(1)) for w in weeks]
    assert numbers == list(range(1, 13)), numbers
    for w in weeks:
        head = w.splitlines()[0]
        for part in ("*Objectives.*", "*Read.*", "*Lab.*", "*Assignment.*"):
            assert part in w, f"{head}: no {part}"


def test_every_exercise_the_course_names_exists():
    refs = set(re.findall(r"\{ref\}`([^`<]+)`", COURSE.read_text()))
    assert refs, "the course names no exercise"
    unknown = refs - all_labels()
    assert not unknown, f"book/course.md names exercises that do not exist: {sorted(unknown)}"


def test_every_document_the_course_links_exists():
    for target in re.findall(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`", COURSE.read_text()):
        path = (COURSE.parent / target).resolve()
        assert any(path.with_suffix(s).exists() for s in (".md", ".ipynb")), \
            f"book/course.md links {{doc}}`{target}`, which does not exist"
