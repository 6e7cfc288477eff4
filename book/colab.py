"""Write the Colab copies of the chapters: ``colab/NN_x.ipynb`` from ``notebooks/NN_x.ipynb``.

Colab renders Markdown (CommonMark with GitHub's tables, plus MathJax for ``$``/``$$``),
not MyST. The book's notebooks use MyST roles and directives that Colab would print as
raw text, with every exercise solution in the open. This script rewrites the Markdown
cells of each chapter into plain Markdown and writes the result to ``colab/``:

=====================================  ==================================================
MyST in ``notebooks/``                 Colab copy
=====================================  ==================================================
``{cite}`key``` (``cite:p``)           ``([Song et al., 2020](link))``, the link is the
                                       entry's DOI, URL or arXiv id in book/references.bib
                                       (a Google Scholar search for its title otherwise);
                                       ``cite:t`` gives ``[Song et al. (2020)](link)``
``{term}`text <entry>```               ``text``
``{doc}`path```                        the page's title, linked to the page in the
                                       repository at the release tag (a chapter: its
                                       Colab copy)
``{ref}``/``{numref}``/``{eq}``        the target's title or number as text
``{math}`x```                          ``$x$``
```` ```{exercise} title ````          a heading ``Exercise N.k: title`` (N the chapter)
```` ```{solution} label ````          ``<details><summary>Solution to Exercise N.k
                                       </summary> ... </details>``, folded
``{solution-start}``/``{solution-end}`` a bold "Solution to Exercise N.k" line before the
                                       solution's cells and an end line after them (code
                                       cells cannot sit inside a folded block)
```` ```{glue:figure} name ````        ``Figure N.k`` and its caption: the cell above draws
                                       the figure (``wsg.viz.glue`` shows it without myst-nb)
``{glue:text}`name```                  ``‹name›``, and after the paragraph a code cell
                                       ``wsg.viz.glued(...)`` (tagged ``colab-glued``) that
                                       prints those values once the cells above have run
```` ```{admonition} title ```` (and   a blockquote whose first line is the title in
``{note}``, ``{tip}``, ...)            bold
```` ```{table} caption ````           the caption in italics above the Markdown table
``$$ ... $$ (label)``, ``{math}``      ``$$ ... \\tag{k} $$`` (Colab runs MathJax)
``(label)=`` targets, ``%`` comments   dropped
=====================================  ==================================================

Also rendered, though the chapters do not use them yet: ``{dropdown}`` (folded like a
solution), ``{figure}``/``{image}`` (the image from the repository at the release tag),
``{code-block}`` (a fenced block), other ``{glue}`` directives (the glued name: a copy
has no outputs), ``{sup}``, ``{sub}``, ``{kbd}``, ``{abbr}``, ``{guilabel}``, ``{download}``.
Colon fences (``:::{name}``) are read like backtick fences. A role or directive without a
rendering here raises ``ValueError`` naming the chapter, so a new construct in a chapter
is noticed by ``make colab`` (and tests/test_colab.py) instead of reaching Colab raw.

Code cells are copied unchanged, tags included (the only added code cells are the
``colab-glued`` ones): the Colab set-up cell (tagged
``skip-execution, nbval-skip, remove-cell`` because the book build and nbval skip it) is
what installs the book's release of ``wsg`` on Colab. Outputs and execution counts are
stripped, the jupytext pairing is dropped from the metadata (a copy is generated, not
edited), the first cell gets a short note on the edition, and a last cell lists the full
entries of the works the chapter cites.

Run ``.venv/bin/python book/colab.py`` (or ``make colab``) after changing a chapter;
tests/test_colab.py fails when a committed copy differs from what this script writes.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import quote_plus

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = "notebooks"
COLAB = "colab"
BIBFILE = "book/references.bib"
COLAB_URL = "https://colab.research.google.com"
CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"


# ----------------------------------------------------------------------- project facts
def _project(root: Path, key: str) -> str:
    """A string field of pyproject.toml's ``[project]`` table."""
    text = (root / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10: read the field's line in the [project] table
        table = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, flags=re.M | re.S).group(1)
        return re.search(rf'^{key}\s*=\s*"([^"]+)"', table, flags=re.M).group(1)
    return tomllib.loads(text)["project"][key]


def project_version(root: Path = ROOT) -> str:
    """``project.version`` of pyproject.toml."""
    return _project(root, "version")


def distribution_name(root: Path = ROOT) -> str:
    """``project.name`` of pyproject.toml (``wsg-book``; the import name is ``wsg``)."""
    return _project(root, "name")


def repository_url(root: Path = ROOT) -> str:
    """The repository of ``_config.yml`` (``https://github.com/org/repo``)."""
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def release_tag(root: Path = ROOT) -> str:
    return f"v{project_version(root)}"


def install_requirement(root: Path = ROOT) -> str:
    """What the Colab set-up cell installs: the book's release, ``name @ git+repo@vX.Y.Z``."""
    return f"{distribution_name(root)} @ git+{repository_url(root)}@{release_tag(root)}"


def colab_install_line(root: Path = ROOT) -> str:
    return f'%pip install -q "{install_requirement(root)}"'


def is_setup_cell(cell) -> bool:
    """The Colab set-up cell: a code cell tagged nbval-skip that pip-installs wsg."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    return cell.get("cell_type") == "code" and "nbval-skip" in tags and "pip install" in cell.get("source", "")


def chapters(root: Path = ROOT) -> list[Path]:
    return sorted((root / NOTEBOOKS).glob(CHAPTER_GLOB))


def chapter_number(path: Path) -> int:
    return int(path.name[:2])


# ------------------------------------------------------------------------ bibliography
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
            "r": "\u030a"}
_LETTERS = {"L": "Ł", "l": "ł", "o": "ø", "O": "Ø", "ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ",
            "OE": "Œ", "aa": "å", "AA": "Å", "i": "ı", "j": "ȷ"}


def latex_to_text(text: str) -> str:
    """Plain Unicode from BibTeX field text: accents decoded, protective braces removed."""
    def accent(m):
        base = m.group(2) or m.group(3)
        base = _LETTERS.get(base.lstrip("\\"), base)
        return base + _ACCENTS[m.group(1)]

    text = re.sub(r"\\([\"'`^~=.uvHckr])\s*(?:\{([^{}]*)\}|([A-Za-z]|\\[ij]))", accent, text)
    text = re.sub(r"\\(ss|ae|AE|oe|OE|aa|AA|[LlOoij])(?![A-Za-z])\s?", lambda m: _LETTERS[m.group(1)], text)
    text = text.replace("--", "–").replace("\\&", "&").replace("~", "\u00a0")
    text = re.sub(r"(?<!\\)[{}]", "", text)
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", text).strip())


@dataclass
class Reference:
    key: str
    authors: list[tuple[str, str]]  # (first names, last name with its "von" part)
    year: str
    title: str
    venue: str
    pages: str
    link: str
    link_text: str

    def author_label(self) -> str:
        """Author part of the book's author-year label (sphinxcontrib-bibtex ``author_year``)."""
        lasts = [last for _, last in self.authors]
        if len(lasts) == 1:
            return lasts[0]
        if len(lasts) == 2:
            return f"{lasts[0]} and {lasts[1]}"
        return f"{lasts[0]} et al."

    def full_entry(self) -> str:
        names = [f"{first} {last}".strip() for first, last in self.authors]
        authors = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts = [f"{authors} ({self.year}). {self.title}."]
        if self.venue:
            parts.append(f"*{self.venue}*" + (f", pp. {self.pages}." if self.pages else "."))
        parts.append(f"[{self.link_text}]({self.link})")
        return " ".join(parts)


def read_bibliography(path: Path) -> dict[str, Reference]:
    """The entries of a .bib file, read with pybtex (installed with sphinxcontrib-bibtex)."""
    from pybtex.database import parse_file

    refs = {}
    for key, entry in parse_file(str(path)).entries.items():
        fields = {k.lower(): v for k, v in entry.fields.items()}
        authors = []
        for person in entry.persons.get("author", []):
            first = latex_to_text(" ".join(person.first_names + person.middle_names))
            last = latex_to_text(" ".join(person.prelast_names + person.last_names + person.lineage_names))
            authors.append((first, last))
        title = latex_to_text(fields.get("title", ""))
        venue = latex_to_text(fields.get("journal") or fields.get("booktitle") or "")
        arxiv = re.search(r"arXiv:\s*(\d{4}\.\d{4,5})", fields.get("journal", "") + " " + fields.get("note", ""))
        if fields.get("eprint") and fields.get("archiveprefix", "").lower() == "arxiv":
            arxiv = re.match(r"(.+)", fields["eprint"])
        if fields.get("doi"):
            link, link_text = f"https://doi.org/{fields['doi']}", f"doi:{fields['doi']}"
        elif fields.get("url"):
            link, link_text = fields["url"], fields["url"]
        elif arxiv:
            link, link_text = f"https://arxiv.org/abs/{arxiv.group(1)}", f"arXiv:{arxiv.group(1)}"
        else:
            link = "https://scholar.google.com/scholar?q=" + quote_plus(f'"{title}"')
            link_text = "search for the title"
        refs[key] = Reference(key, authors, fields.get("year", "n.d."), title, venue,
                              latex_to_text(fields.get("pages", "")), link, link_text)
    return refs


# ------------------------------------------------------------------------ label index
@dataclass
class Target:
    kind: str  # "exercise", "section", "equation"
    chapter: int
    number: str  # "2.1" for an exercise, "3" for an equation, "" for a section
    title: str


FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[A-Za-z][\w:.+-]*)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\s*\((?P<label>[^()\s]+)\)=\s*$")
HEADING = re.compile(r"^\s{0,3}(?P<hashes>#{1,6})\s+(?P<text>.*?)\s*#*\s*$")
MATH_LABEL = re.compile(r"\$\$\s*\((?P<label>[^()\s]+)\)\s*$")


def _closes(line: str, fence: str) -> bool:
    return re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", line) is not None


def _split_options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's options (``:key: value`` lines or a ``---`` YAML block) and its content."""
    options: dict[str, str] = {}
    i = 0
    if body and body[0].strip() == "---":
        end = next((j for j in range(1, len(body)) if body[j].strip() == "---"), None)
        if end is not None:
            options = {str(k): str(v) for k, v in (yaml.safe_load("\n".join(body[1:end])) or {}).items()}
            i = end + 1
    else:
        while i < len(body) and OPTION.match(body[i]):
            m = OPTION.match(body[i])
            options[m.group("key")] = m.group("value").strip()
            i += 1
    content = body[i:]
    while content and not content[0].strip():
        content = content[1:]
    while content and not content[-1].strip():
        content = content[:-1]
    return options, content


def _markdown_sources(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return [c.source for c in nb.cells if c.cell_type == "markdown"]
    return [path.read_text()]


def _resolve(target: str) -> str:
    """A path written in a chapter (relative to notebooks/, or to the book's root when it starts
    with ``/``) as a path relative to the repository root."""
    joined = target.lstrip("/") if target.startswith("/") else f"{NOTEBOOKS}/{target}"
    parts: list[str] = []
    for part in joined.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _first_heading(path: Path) -> Optional[str]:
    for text in _markdown_sources(path):
        for line in text.splitlines():
            m = HEADING.match(line)
            if m and len(m.group("hashes")) == 1:
                return m.group("text")
    return None


def index_labels(root: Path = ROOT) -> dict[str, Target]:
    """Every label the chapters (and the book's pages) define: exercises, sections, equations."""
    labels: dict[str, Target] = {}
    pages = [(chapter_number(p), p) for p in chapters(root)]
    pages += [(0, p) for p in sorted((root / "book").glob("*.md"))]
    for number, path in pages:
        exercises = equations = figures = tables = 0
        pending: list[str] = []
        for text in _markdown_sources(path):
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if m := TARGET.match(line):
                    pending.append(m.group("label"))
                    continue
                if (m := HEADING.match(line)) and pending:
                    for label in pending:
                        labels[label] = Target("section", number, "", m.group("text"))
                    pending = []
                if m := MATH_LABEL.search(line):
                    equations += 1
                    labels[m.group("label")] = Target("equation", number, str(equations), "")
                fence = FENCE.match(line)
                info = DIRECTIVE_INFO.match(fence.group("info").strip()) if fence else None
                if not info:
                    continue
                options, _ = _split_options(lines[i + 1:i + 40])
                name = info.group("name")
                if name in ("glue:figure", "figure") and "name" in options:
                    figures += 1
                    labels[options["name"]] = Target("figure", number, f"{number}.{figures}", "")
                elif name == "table" and "name" in options:
                    tables += 1
                    labels[options["name"]] = Target("table", number, f"{number}.{tables}", "")
                elif name == "exercise":
                    numbered = "nonumber" not in options
                    exercises += numbered
                    if "label" in options:
                        labels[options["label"]] = Target(
                            "exercise", number, f"{number}.{exercises}" if numbered else "", info.group("arg"))
                elif name == "math" and "label" in options:
                    equations += 1
                    labels[options["label"]] = Target("equation", number, str(equations), "")
    return labels


# --------------------------------------------------------------------------- converter
ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important", "warning": "Warning",
               "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error",
               "seealso": "See also", "admonition": ""}
QUOTES = {"epigraph", "pull-quote", "highlights", "margin", "sidebar", "topic"}
CODE_DIRECTIVES = {"code-block", "code", "sourcecode"}
INLINE = re.compile(r"(?P<role>\{(?P<name>[A-Za-z][\w:+.-]*)\}`(?P<content>[^`]*)`)"
                    r"|(?P<code>(?P<ticks>`+)(?!`).*?[^`](?P=ticks)(?!`))", re.S)
#: the tag of the cells the converter adds after a paragraph with glued numbers (wsg.viz.glued)
GLUED_TAG = "colab-glued"
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


@dataclass
class ChapterState:
    """What the conversion of one chapter carries from cell to cell."""

    name: str
    number: int
    exercises: int = 0
    equations: int = 0
    heading_level: int = 1
    figures: int = 0
    tables: int = 0
    cited: list[str] = field(default_factory=list)
    glued: list[str] = field(default_factory=list)  # names of {glue:text} values in the current cell


class Converter:
    """Converts the chapters of the book at ``root`` into their Colab copies."""

    def __init__(self, root: Path = ROOT):
        self.root = Path(root)
        self.refs = read_bibliography(self.root / BIBFILE)
        self.labels = index_labels(self.root)
        self.repo = repository_url(self.root)
        self.tag = release_tag(self.root)
        self.book_title = yaml.safe_load((self.root / "_config.yml").read_text()).get("title", "")
        org_repo = self.repo.split("github.com/")[-1]
        self.blob = f"{self.repo}/blob/{self.tag}"
        self.raw = f"https://raw.githubusercontent.com/{org_repo}/{self.tag}"
        self.colab_blob = f"{COLAB_URL}/github/{org_repo}/blob/{self.tag}"
        self.state: ChapterState = ChapterState("", 0)

    # ------------------------------------------------------------------ notebooks
    def convert(self, path: Path) -> nbformat.NotebookNode:
        """The Colab copy of one chapter notebook."""
        path = Path(path)
        self.state = ChapterState(path.stem, chapter_number(path))
        nb = nbformat.read(path, as_version=4)
        out = copy.deepcopy(nb)
        out.metadata.pop("jupytext", None)
        cells = []
        for cell in out.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
            elif cell.cell_type == "markdown":
                self.state.glued = []
                cell.source = self.markdown(cell.source)
            cell.metadata.pop("execution", None)
            cells.append(cell)
            seen_code = any(c.cell_type == "code" for c in cells)  # none before the set-up cell
            if cell.cell_type == "markdown" and self.state.glued and seen_code:
                names = ", ".join(f'"{n}"' for n in dict.fromkeys(self.state.glued))
                shown = nbformat.v4.new_code_cell(f"wsg.viz.glued({names})  # the numbers ‹…› in the text above",
                                                  id=f"{cell.id}-glued"[:64])
                shown.metadata["tags"] = [GLUED_TAG]
                cells.append(shown)
        first = next((c for c in cells if c.cell_type == "markdown"), None)
        if first is not None:
            first.source = self._with_edition_note(first.source)
        if self.state.cited:
            refs = nbformat.v4.new_markdown_cell(self._works_cited(), id=f"{path.stem[:2]}-colab-works-cited")
            cells.append(refs)
        out.cells = cells
        return out

    def render(self, path: Path) -> str:
        """The text of the Colab copy of ``path``, exactly as it is written to ``colab/``."""
        return nbformat.writes(self.convert(path)) + "\n"

    def target(self, path: Path) -> Path:
        return self.root / COLAB / Path(path).name

    def write_all(self) -> list[Path]:
        (self.root / COLAB).mkdir(exist_ok=True)
        written = []
        for path in chapters(self.root):
            out = self.target(path)
            text = self.render(path)
            if not out.is_file() or out.read_text() != text:
                out.write_text(text)
            written.append(out)
        return written

    def _with_edition_note(self, source: str) -> str:
        lines = source.split("\n")
        at = next((i + 1 for i, line in enumerate(lines) if HEADING.match(line)), 0)
        note = (f"> **Colab edition** of Chapter {self.state.number} of *{self.book_title}*, for the release "
                f"{self.tag} of `wsg`: the first code cell installs that release. With *Runtime → Change "
                f"runtime type → GPU* the chapter runs its larger `full` profile. The solutions of the "
                f"exercises are folded: click *Solution* under an exercise to open it.")
        return "\n".join(lines[:at] + ["", note] + ([""] if at < len(lines) and lines[at].strip() else []) + lines[at:])

    def _works_cited(self) -> str:
        keys = sorted(set(self.state.cited), key=lambda k: (self.refs[k].author_label(), self.refs[k].year, k))
        return "\n".join(["## Works cited in this chapter", ""] +
                         [f"- {self.refs[k].full_entry()}" for k in keys])

    # --------------------------------------------------------------- block level
    def _error(self, message: str) -> ValueError:
        return ValueError(f"{self.state.name}: {message}; give it a Colab rendering in book/colab.py")

    def markdown(self, text: str) -> str:
        """One Markdown cell, MyST to plain Markdown."""
        return "\n".join(self._blocks(text.split("\n"))).strip("\n")

    def _blocks(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        prose: list[str] = []

        def flush():
            if prose:
                out.extend(self.inline("\n".join(prose)).split("\n"))
                prose.clear()

        i = 0
        while i < len(lines):
            line = lines[i]
            fence = FENCE.match(line)
            if fence:
                flush()
                mark, info = fence.group("fence"), fence.group("info").strip()
                end = next((j for j in range(i + 1, len(lines)) if _closes(lines[j], mark)), len(lines))
                body = lines[i + 1:end]
                directive = DIRECTIVE_INFO.match(info) if mark[0] in "`:" else None
                if directive:
                    indent = fence.group("indent")  # a directive in a list item: its body is indented too
                    body = [x[len(indent):] if x.startswith(indent) else x.lstrip() for x in body]
                    rendered = self.directive(directive.group("name"), directive.group("arg"), body)
                    while rendered and not rendered[-1].strip():
                        rendered.pop()
                    if out and out[-1].strip():
                        out.append("")  # a block of its own: a blank line before ...
                    out.extend(indent + r if r else r for r in rendered)
                    if end + 1 < len(lines) and lines[end + 1].strip():
                        out.append("")  # ... and after
                elif mark[0] == ":":
                    raise self._error(f"colon fence without a directive name: {line.strip()!r}")
                else:  # a code block: verbatim
                    out.extend(lines[i:end + 1])
                i = end + 1
                continue
            if line.lstrip().startswith("$$"):
                flush()
                end = i if line.strip().count("$$") >= 2 else next(
                    (j for j in range(i + 1, len(lines)) if "$$" in lines[j]), len(lines) - 1)
                out.extend(self._display_math(lines[i:end + 1]))
                i = end + 1
                continue
            if TARGET.match(line) or re.match(r"^\s*%", line) or line.strip() == "+++":
                flush()  # a MyST target, comment or block break: nothing for the reader
                i += 1
                continue
            if m := HEADING.match(line):
                self.state.heading_level = len(m.group("hashes"))
            prose.append(line)
            i += 1
        flush()
        return out

    def _display_math(self, lines: list[str]) -> list[str]:
        last = lines[-1]
        m = MATH_LABEL.search(last)
        if not m:
            return lines
        self.state.equations += 1
        tag = f"\\tag{{{self.state.equations}}}"
        before = last[:m.start()].rstrip()  # the line up to its closing $$
        if len(lines) == 1:  # $$ x $$ (label) on one line
            return [f"{before} {tag} $$"]
        return lines[:-1] + ([before] if before else []) + [tag, "$$"]

    def directive(self, name: str, arg: str, body: list[str]) -> list[str]:
        options, content = _split_options(body)
        state = self.state
        if name == "exercise":
            heading = "#" * min(state.heading_level + 1, 6)
            if "nonumber" in options:
                label = "Exercise"
            else:
                state.exercises += 1
                label = f"Exercise {state.number}.{state.exercises}"
            title = f"{label}: {self.inline(arg)}" if arg.strip() else label
            return [f"{heading} {title}", "", *self._blocks(content), ""]
        if name == "solution":
            target = self.labels.get(arg.strip())
            summary = f"Solution to Exercise {target.number}" if target and target.number else "Solution"
            return ["<details>", f"<summary>{summary}</summary>", "", *self._blocks(content), "", "</details>", ""]
        if name == "dropdown":
            return ["<details>", f"<summary>{self.inline(arg) or 'Details'}</summary>", "",
                    *self._blocks(content), "", "</details>", ""]
        if name in ADMONITIONS or name in QUOTES:
            if name in ADMONITIONS and name != "admonition" and arg.strip():
                content = [arg] + content  # the text after {note} is the first line of its body
                arg = ""
            title = self.inline(arg) if arg.strip() else ADMONITIONS.get(name, "")
            inner = self._blocks(content)
            quoted = ([f"> **{title}**", ">"] if title else []) + [f"> {x}" if x.strip() else ">" for x in inner]
            return quoted + [""]
        if name == "math":
            lines = ["$$", *content]
            if "label" in options:
                state.equations += 1
                lines.append(f"\\tag{{{state.equations}}}")
            return lines + ["$$", ""]
        if name in CODE_DIRECTIVES:
            return [f"```{arg.strip()}", *content, "```", ""]
        if name in ("figure", "image"):
            alt = options.get("alt", "")
            url = self._file_url(arg.strip(), raw=True)
            caption = self._blocks(content) if name == "figure" else []
            return [f"![{alt}]({url})", "", *([f"*{' '.join(x.strip() for x in caption)}*", ""] if caption else [])]
        if name == "glue:figure":
            state.figures += 1
            caption = " ".join(x.strip() for x in self._blocks(content) if x.strip())
            return [f"**Figure {state.number}.{state.figures}** (drawn by the cell above). {caption}", ""]
        if name.startswith("glue"):
            caption = self._blocks(content)
            return [f"*(The output `{arg.strip()}` is shown by the cell that computes it.)*", "",
                    *caption, ""]
        if name == "table":  # a Markdown table with its number and caption above it
            if "name" in options:
                state.tables += 1
            number = f"Table {state.number}.{state.tables}. " if "name" in options else ""
            return [f"*{number}{self.inline(arg.strip())}*", "", *self._blocks(content), ""]
        if name == "solution-start":  # a solution with code cells: its cells follow, up to solution-end
            target = self.labels.get(arg.strip())
            summary = f"Solution to Exercise {target.number}" if target and target.number else "Solution"
            return [f"**{summary}** (try the exercise first; the cells below, up to the end of the solution, "
                    "compute it)", "", *self._blocks(content), ""]
        if name == "solution-end":
            return ["*(End of the solution.)*", ""]
        raise self._error(f"MyST directive {{{name}}}")

    def _file_url(self, target: str, raw: bool = False) -> str:
        if re.match(r"^[a-z]+://", target):
            return target
        rel = _resolve(target)
        return f"{self.raw}/{rel}" if raw else f"{self.blob}/{rel}"

    # -------------------------------------------------------------- inline level
    def inline(self, text: str) -> str:
        """Roles in a run of prose; code spans are left alone."""
        def replace(m: re.Match) -> str:
            if m.group("code"):
                return m.group(0)
            return self.role(m.group("name"), m.group("content"))

        return INLINE.sub(replace, text)

    def role(self, name: str, content: str) -> str:
        explicit = EXPLICIT.match(content)
        text, target = (explicit.group("text"), explicit.group("target")) if explicit else (None, content)
        if name in ("cite", "cite:p", "cite:ps", "cite:t", "cite:ts", "cite:author", "cite:year", "cite:text"):
            return self._cite(name, content)
        if name == "term":
            return text or content
        if name == "math":
            return f"${content}$"
        if name == "doc":
            return self._doc(text, target)
        if name in ("ref", "numref", "eq"):
            return self._ref(name, text, target.strip())
        if name == "abbr":
            return content
        if name in ("sup", "sub", "kbd"):
            return f"<{name}>{content}</{name}>"
        if name in ("code", "literal", "file", "samp", "command"):
            return f"`{content}`"
        if name in ("guilabel", "menuselection"):
            return f"*{content.replace('-->', '→')}*"
        if name == "download":
            return f"[{text or Path(target).name}]({self._file_url(target, raw=True)})"
        if name.startswith("glue"):
            glued = content.split(":")[0].strip()
            self.state.glued.append(glued)
            return f"‹{glued}›"
        raise self._error(f"MyST role {{{name}}}")

    def _cite(self, name: str, content: str) -> str:
        keys = [k.strip() for k in content.split(",") if k.strip()]
        missing = [k for k in keys if k not in self.refs]
        if missing:
            raise ValueError(f"{self.state.name}: {missing} not in {BIBFILE}")
        for key in keys:
            if key not in self.state.cited:
                self.state.cited.append(key)
        refs = [self.refs[k] for k in keys]
        if name in ("cite:t", "cite:ts"):
            return ", ".join(f"[{r.author_label()} ({r.year})]({r.link})" for r in refs)
        if name == "cite:author":
            return ", ".join(f"[{r.author_label()}]({r.link})" for r in refs)
        if name == "cite:year":
            return ", ".join(f"[{r.year}]({r.link})" for r in refs)
        inner = "; ".join(f"[{r.author_label()}, {r.year}]({r.link})" for r in refs)
        return inner if name == "cite:text" else f"({inner})"

    def _doc(self, text: Optional[str], target: str) -> str:
        stem = _resolve(target)
        for suffix in (".md", ".ipynb"):
            page = self.root / f"{stem}{suffix}"
            if page.is_file():
                break
        else:
            raise self._error(f"{{doc}} target {target} not found")
        title = text or _first_heading(page) or page.stem
        if stem.startswith(f"{NOTEBOOKS}/") and page.suffix == ".ipynb":
            return f"[{title}]({self.colab_blob}/{COLAB}/{page.name})"
        return f"[{title}]({self.blob}/{stem}{page.suffix})"

    def _ref(self, name: str, text: Optional[str], label: str) -> str:
        target = self.labels.get(label)
        if target is None:
            raise self._error(f"{{{name}}} target {label!r} not found")
        where = "" if target.chapter in (0, self.state.number) else f" of Chapter {target.chapter}"
        if target.kind == "equation":
            number = f"({target.number})"
            if text:
                return text.replace("{number}", number)
            return (f"Eq. {number}" if name == "numref" else number) + where
        if target.kind in ("figure", "table"):
            number = target.number
            if text:
                return text.replace("%s", number).replace("{number}", number)
            return f"{target.kind.capitalize()} {number}"
        if target.kind == "exercise":
            default = f"Exercise {target.number}".strip()
            title = self.inline(target.title)
        else:
            default, title = target.title, target.title
        if text:
            return text.replace("%s", target.number).replace("{number}", target.number).replace("{name}", title)
        if name == "ref" and target.kind == "exercise" and title:
            return f"{default} ({title})"
        return default + (where if target.kind == "section" else "")


# --------------------------------------------------------------------------- main
def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report copies that are out of date (exit 1)")
    args = parser.parse_args(argv)
    converter = Converter(ROOT)
    stale = [converter.target(p) for p in chapters(ROOT)
             if not converter.target(p).is_file() or converter.target(p).read_text() != converter.render(p)]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    for path in converter.write_all():
        print(f"{'wrote' if path in stale else 'up to date'}: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
