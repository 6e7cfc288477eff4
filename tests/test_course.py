"""The course material: learning objectives, exercises and summaries of every chapter, and the syllabus.

Cheap: reads the chapters' MyST sources and ``book/course.md``, executes nothing.

* every chapter opens with one ``{admonition} Learning objectives`` of 3-5 bullets, before its
  first section;
* every chapter has at least four ``{exercise}`` blocks, each with a ``:label:``, a kind in its
  title, e.g. ``(derivation)``, and a ``{solution}`` (or gated ``{solution-start}``) drop-down
  (``:class: dropdown``); the kinds
  of a chapter include a derivation, a code exercise, an experiment and a critique;
* every chapter ends with ``## Summary`` before ``## References``;
* ``book/course.md`` is in ``_toc.yml`` (its own unnumbered part, before the appendices), has
  twelve weeks each with objectives, reading, papers, a lab and an assignment, and every exercise
  label, document and citation it names exists;
* the course's exercises map onto its weeks: each exercise is assigned at most once, in a week that
  reads its chapter or a later one, and the last week holds no exercise (the projects);
* grade weights sum to 100 %, and each kind of graded work (exercises, labs, the final project) has
  its rubric;
* no lab time is typed: the course includes the table ``book/lab_times_table.md`` that
  ``book/lab_times.py`` writes from an executed build, and neither the course nor the preface
  states a time in seconds;
* every entry of ``book/references.bib`` has a DOI or a URL;
* the preface's chapter map (``book/chapter_map.svg``) is what ``book/chapter_map.py`` draws, and
  names every chapter.
"""
import pickle
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.md"))
COURSE = ROOT / "book" / "course.md"
PREFACE = ROOT / "book" / "preface.md"
BIB = ROOT / "book" / "references.bib"
LAB_TIMES = ROOT / "book" / "lab_times_table.md"
sys.path.insert(0, str(ROOT / "book"))
KINDS = {"derivation", "code", "experiment", "critique", "design"}
REQUIRED_KINDS = {"derivation", "code", "experiment", "critique"}

EXERCISE = re.compile(r"^(`{3,})\{exercise\}[ \t]*(?P<title>[^\n]*)\n(?P<body>.*?)^\1[ \t]*$", re.M | re.S)
SOLUTION = re.compile(r"^(`{3,})\{solution\}[ \t]*(?P<label>\S+)[ \t]*\n(?P<body>.*?)^\1[ \t]*$", re.M | re.S)
SOLUTION_START = re.compile(r"^(`{3,})\{solution-start\}[ \t]*(?P<label>\S+)[ \t]*\n(?P<body>.*?)^\1[ \t]*$", re.M | re.S)
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
    """Solution label -> its ``:class:``: ``{solution}`` blocks and gated ``{solution-start}`` ones
    (whose options are the fenced block's body; the solution runs on to ``{solution-end}``)."""
    found = {m.group("label"): _option(m.group("body"), "class") for m in SOLUTION.finditer(text)}
    found.update({m.group("label"): _option(m.group("body"), "class") for m in SOLUTION_START.finditer(text)})
    return found


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
        for part in ("*Objectives.*", "*Read.*", "*Papers.*", "*Lab.*", "*Assignment.*"):
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


def _weeks() -> dict[int, str]:
    weeks = re.split(r"^### (?=Week \d+)", COURSE.read_text(), flags=re.M)[1:]
    return {int(re.match(r"Week (\d+)", w).group(1)): w for w in weeks}


def _part(week: str, name: str) -> str:
    """One paragraph of a week: from ``*Name.*`` to the next blank line."""
    m = re.search(rf"\*{name}\.\*(.*?)(?:\n\s*\n|$)", week, re.S)
    return m.group(1) if m else ""


def _chapter_of_label() -> dict[str, str]:
    return {e["label"]: p.stem for p in SOURCES for e in exercises(p.read_text())}


def test_exercises_map_onto_the_weeks_that_read_their_chapter():
    chapter_of = _chapter_of_label()
    seen: dict[str, int] = {}
    read_so_far: set[str] = set()
    for number, week in sorted(_weeks().items()):
        read_so_far |= set(re.findall(r"\{doc\}`\.\./notebooks/([^`>]+)`", _part(week, "Read")))
        labels = re.findall(r"\{ref\}`([^`<]+)`", _part(week, "Assignment"))
        for label in labels:
            assert label not in seen, f"{label} is assigned in week {seen[label]} and again in week {number}"
            seen[label] = number
            assert chapter_of.get(label) in read_so_far, \
                f"week {number} assigns {label} before any week reads {chapter_of.get(label)}"
    last = max(_weeks())
    assert not re.findall(r"\{ref\}`", _weeks()[last]), f"week {last} (the projects) still assigns exercises"
    assert len(seen) >= 30, f"only {len(seen)} exercises assigned"


def test_every_week_but_the_last_names_papers_that_exist():
    keys = set(re.findall(r"^@\w+\{([^,]+),", BIB.read_text(), re.M))
    weeks = _weeks()
    for number, week in weeks.items():
        cited = re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", _part(week, "Papers"))
        if number < max(weeks):
            assert cited, f"week {number}: no paper to read"
        for group in cited:
            for key in group.split(","):
                assert key.strip() in keys, f"week {number} cites {key!r}, not in book/references.bib"


def test_grade_weights_sum_to_100_and_each_kind_has_a_rubric():
    text = COURSE.read_text()
    grades = text[text.index("## Grades"):]
    grades = grades[: grades.index("\n## ", 4)]
    weights = [int(w) for w in re.findall(r"^\|[^|\n]+\|\s*(\d+)\s*%\s*\|", grades, re.M)]
    assert weights and sum(weights) == 100, f"grade weights {weights} sum to {sum(weights)}"
    for kind in ("exercises", "labs"):
        assert re.search(rf"^### Rubric: .*{kind}", text, re.M | re.I), f"no rubric for {kind}"
    assert "**Grading rubric**" in text[text.index("## Final project"):], "no rubric for the final project"


def test_session_lengths_are_stated():
    text = COURSE.read_text()
    assert re.search(r"\*\*Lecture, \d+ minutes\*\*", text) and re.search(r"\*\*Lab, \d+ minutes\*\*", text)


#: times the course may state: settings, not measurements (session lengths, a presentation slot,
#: the `full` profile's cap on one training run)
SETTING_MINUTES = {"15", "45", "90"}


@pytest.mark.parametrize("page", [COURSE, PREFACE], ids=lambda p: p.stem)
def test_no_lab_time_is_typed(page):
    text = page.read_text()
    seconds = re.findall(r"\b\d[\d,.]*\s*(?:s|sec|seconds?)\b", text)
    assert not seconds, f"{page.name} types times in seconds: {seconds} (they come from book/lab_times_table.md)"
    minutes = set(re.findall(r"\b(\d+)\s*minutes?\b", text)) - SETTING_MINUTES
    assert not minutes, f"{page.name} types times in minutes: {sorted(minutes)}"
    assert "quarter of a minute" not in text


def test_course_includes_the_generated_lab_times():
    text = COURSE.read_text()
    assert re.search(r"^```\{include\} lab_times_table\.md\s*$", text, re.M)
    import lab_times

    table = LAB_TIMES.read_text()
    assert table.startswith(lab_times.MARK)
    rows = re.findall(r"^\| \{doc\}`\d+\. [^<]+<\.\./notebooks/([^>]+)>` \| (\d+) \|$", table, re.M)
    if rows:  # a measured table names every chapter
        assert [r[0] for r in rows] == sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        assert re.search(r"on .+ CPU cores", table), "the table does not say which machine measured it"


def _fake_doctrees(tmp_path: Path, runtimes: dict[str, float | None]) -> Path:
    from docutils import nodes

    env = types.SimpleNamespace(
        found_docs=set(runtimes) | {"book/course"},
        titles={d: nodes.title(text=f"Title {d[-1]}") for d in runtimes},
        nb_metadata={d: ({"exec_data": {"runtime": s, "method": "cache", "succeeded": True}} if s is not None else {})
                     for d, s in runtimes.items()})
    (tmp_path / "environment.pickle").write_bytes(pickle.dumps(env))
    return tmp_path


def test_lab_times_writes_the_table_from_the_build(tmp_path):
    import lab_times

    doctrees = _fake_doctrees(tmp_path, {"notebooks/01_a": 8.4, "notebooks/02_b": 100.6})
    out = tmp_path / "table.md"
    assert lab_times.main(["--doctrees", str(doctrees), "--out", str(out), "--build-seconds", "130"]) == 0
    text = out.read_text()
    assert text.startswith(lab_times.MARK)
    assert "| {doc}`1. Title a <../notebooks/01_a>` | 8 |" in text
    assert "| {doc}`2. Title b <../notebooks/02_b>` | 101 |" in text
    assert "| all 2 chapters | 109 |" in text
    assert "took 130 seconds" in text and "CPU cores" in text and "commit" in text


def test_lab_times_leaves_the_table_when_a_chapter_was_not_executed(tmp_path):
    import lab_times

    doctrees = _fake_doctrees(tmp_path, {"notebooks/01_a": 8.4, "notebooks/02_b": None})
    out = tmp_path / "table.md"
    out.write_text("kept")
    assert lab_times.main(["--doctrees", str(doctrees), "--out", str(out)]) == 2
    assert out.read_text() == "kept"


def test_every_reference_has_a_doi_or_url():
    from pybtex.database import parse_file

    entries = parse_file(str(BIB)).entries
    missing = [k for k, e in entries.items() if not {"doi", "url"} & {f.lower() for f in e.fields}]
    assert not missing, f"book/references.bib entries without a DOI or URL: {missing}"


def test_chapter_map_is_current_and_names_every_chapter():
    import chapter_map

    result = subprocess.run([sys.executable, str(ROOT / "book" / "chapter_map.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(chapter_map.CHAPTERS) == [int(c[:2]) for c in chapters]
    assert set(chapter_map.NEEDS) == set(chapter_map.CHAPTERS)
    assert "```{figure} chapter_map.svg" in PREFACE.read_text()
