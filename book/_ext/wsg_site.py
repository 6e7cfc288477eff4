"""Small HTML fixes for the book, found by looking at the built site in Chromium (tests/test_site.py).

- Long code lines wrap inside the column instead of running off its right edge
  (``static/wsg.css``; code blocks and cell inputs only, printed tables keep their alignment).
- Each inline ``<script>`` appears once per page. With Sphinx 7.4, a body-only script that an
  extension adds after the builder started (sphinx-thebe's ``const THEBE_JS_URL = ...``,
  sphinx-togglebutton's selector) is registered once as filename ``None`` and once as ``''``,
  so notebook pages got it twice and the browser reported
  ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`` on every chapter.
- A chapter's Colab launch button opens its Colab copy, ``colab/NN_x.ipynb`` (plain Markdown,
  folded solutions, written by ``book/colab.py``), instead of ``notebooks/NN_x.ipynb``, whose
  MyST roles and directives Colab would show as raw text. sphinx-book-theme builds the link in
  its own ``html-page-context`` handler (priority 501) into ``context["header_buttons"]``; ours
  runs after it and rewrites the path of the link when the copy exists.
- The student edition hides the solutions (sphinx-exercise's ``hide_solutions``), the gated ones
  included. sphinx-exercise 1.2.1 drops a ``{solution-start}`` when ``hide_solutions`` is set,
  but keeps its ``{solution-end}`` and everything between the two (the solution's text and code
  cells, outputs included) in the open. Here ``solution-start`` leaves a marker instead, and a
  transform removes the marker, the nodes after it and the ``solution-end``.
- The bibliography lists author-year labels ("Song et al., 2020"; "Zhang et al., 2020a" when two
  works share them), the form the text cites in, instead of pybtex's alpha keys ("SWM+20"):
  the pybtex formatting style ``wsg_author_year`` (``bibtex_default_style`` in ``_config.yml``)
  is pybtex's ``plain`` with such labels, sorted by author, year and title.
- A build with execution off (``make book-check``, tests/test_site.py, tests/test_editions.py)
  has no glue data: the notebooks are stored without outputs. There, and only there, a
  ``{glue:figure}`` or ``{glue:text}`` whose key is missing shows a placeholder (``⟨key⟩``)
  instead of failing the ``-W`` build, so that the structural checks (toctree, references,
  figure names for ``{numref}``) still run. An executed build keeps myst-nb's own behaviour: a
  missing key is a warning, and an error under ``-W``.
- ``{glue:text}`` with a format (``{glue:text}`key:.1f```) accepts a glued NumPy scalar. NumPy 2
  writes its scalars' text as ``np.float64(33.4)``, which myst-nb 1.4 cannot read as a number
  ("could not convert string to float"); the value inside the parentheses is formatted instead.
- The one-page build (``singlehtml``, for ``make pdf``) renders every node the HTML build does.
  Sphinx looks a node's HTML handlers up by the builder's name and falls back to its format
  (``html``) only when no extension registered handlers under that name; some do for
  ``singlehtml``, so myst-nb's folded cells (``HideCodeCellNode``, registered for ``html``) had
  none. The ``html`` handlers fill in what ``singlehtml`` lacks.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform

STATIC = Path(__file__).resolve().parent / "static"


def _script_key(js: Any) -> tuple:
    """Identity of a script tag: its file (``None`` and ``''`` both mean inline) and attributes."""
    filename = getattr(js, "filename", js) or ""
    attributes = getattr(js, "attributes", {}) or {}
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Drop repeated script tags from a page, keeping the first of each (order is preserved)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique  # a new list: the builder's own list is left alone


COLAB_DIR = "colab"  # where book/colab.py writes the Colab copies, relative to the book's root


def _launch_links(buttons: list) -> list[dict]:
    """Every link button in the header's button tree (groups hold theirs in ``buttons``)."""
    links = []
    for button in buttons or []:
        if not isinstance(button, dict):
            continue
        if button.get("type") == "group":
            links.extend(_launch_links(button.get("buttons")))
        elif button.get("url"):
            links.append(button)
    return links


def colab_launch_to_copy(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Point the page's Colab launch link at ``colab/<name>.ipynb`` when that copy exists."""
    colab_url = (app.config.html_theme_options.get("launch_buttons") or {}).get("colab_url", "").strip("/")
    if not colab_url or not pagename.startswith("notebooks/"):
        return
    name = pagename.rsplit("/", 1)[-1] + ".ipynb"
    if not (Path(app.srcdir) / COLAB_DIR / name).is_file():
        return
    for button in _launch_links(context.get("header_buttons")):
        url = button["url"]
        if url.startswith(colab_url + "/") and url.endswith(f"/{pagename}.ipynb"):
            button["url"] = url[: -len(f"{pagename}.ipynb")] + f"{COLAB_DIR}/{name}"


def add_static_path(app: Sphinx) -> None:
    """Serve ``static/`` (the wrap rules) from every page."""
    app.config.html_static_path.append(str(STATIC))


# ------------------------------------------------------------------ hidden gated solutions
class hidden_solution_start(nodes.Element):
    """Where a gated solution began in the student edition; removed with what follows it."""


class RemoveHiddenGatedSolutions(SphinxTransform):
    """Remove a hidden gated solution: its marker, the nodes after it, its ``solution-end``.

    Runs before sphinx-exercise's own gated-directive transforms (priority 10), on siblings, as
    those do. A marker without its end (a malformed page) is left to sphinx-exercise's own
    structure check, which reports it.
    """

    default_priority = 5

    def apply(self, **kwargs: Any) -> None:
        from sphinx_exercise.nodes import solution_end_node

        for marker in list(self.document.findall(hidden_solution_start)):
            parent = marker.parent
            start = parent.index(marker)
            end = next((i for i in range(start + 1, len(parent.children))
                        if isinstance(parent.children[i], solution_end_node)), None)
            if end is None:
                parent.remove(marker)
                continue
            for child in parent.children[start: end + 1]:
                parent.remove(child)


def _solution_start_directive():
    from sphinx_exercise.directive import SolutionStartDirective

    class SolutionStart(SolutionStartDirective):
        """sphinx-exercise's ``solution-start``; leaves a marker when solutions are hidden."""

        def run(self):
            out = super().run()
            if self.env.app.config.hide_solutions:
                return [hidden_solution_start()]
            return out

    return SolutionStart


def html_handlers_for_singlehtml(app: Sphinx) -> None:
    """Give the ``singlehtml`` builder the ``html`` handlers it lacks (see the docstring)."""
    if app.builder.name == "html" or app.builder.format != "html":
        return
    handlers = app.registry.translation_handlers
    own = handlers.setdefault(app.builder.name, {})
    for node, pair in handlers.get("html", {}).items():
        own.setdefault(node, pair)


# ------------------------------------------------------------------- NumPy scalars in glue
_NUMPY_SCALAR = re.compile(r"^np\.(?:float|int|uint|bool_?|complex)\w*\((.*)\)$", re.S)


def numpy_scalars_in_glue(app: Sphinx) -> None:
    """Let ``{glue:text}`` format ``np.float64(...)`` (see the docstring); idempotent."""
    try:
        from myst_nb.ext.glue import roles
    except ImportError:
        return
    if getattr(roles.format_plain_text, "wsg_numpy", False):
        return
    fmt = roles.format_plain_text

    def format_numpy_scalar(text, fmt_spec):
        m = _NUMPY_SCALAR.match(text.strip()) if isinstance(text, str) else None
        return fmt(m.group(1) if m else text, fmt_spec)

    format_numpy_scalar.wsg_numpy = True
    roles.format_plain_text = format_numpy_scalar


# ------------------------------------------------------------- glue without execution
def placeholder_glue_when_not_executed(app: Sphinx) -> None:
    """With ``nb_execution_mode = "off"``, a missing glue key pastes ``⟨key⟩`` (see the docstring)."""
    if getattr(app.config, "nb_execution_mode", None) != "off":
        return
    try:
        from myst_nb.core.variables import RetrievalError, VariableOutput
        from myst_nb.ext.glue import directives, roles
    except ImportError:  # not a myst-nb build
        return
    if getattr(directives.retrieve_glue_data, "wsg_placeholder", False):
        return
    retrieve, fmt = directives.retrieve_glue_data, roles.format_plain_text

    def retrieve_or_placeholder(document, key):
        try:
            return retrieve(document, key)
        except RetrievalError:
            if "nb_renderer" not in document:
                raise
            return VariableOutput(data={"text/plain": repr(f"⟨{key}⟩")}, metadata={},
                                  nb_renderer=document["nb_renderer"], vtype="glue")

    def format_or_placeholder(text, fmt_spec):
        try:
            return fmt(text, fmt_spec)
        except (TypeError, ValueError):
            if text.startswith("'⟨") and text.endswith("⟩'"):
                return text[1:-1]
            raise

    retrieve_or_placeholder.wsg_placeholder = True
    directives.retrieve_glue_data = roles.retrieve_glue_data = retrieve_or_placeholder
    roles.format_plain_text = format_or_placeholder


# --------------------------------------------------------------------- author-year labels
def _plain_text(latex: str) -> str:
    from pybtex.richtext import Text

    return Text.from_latex(latex).render_as("text")


def author_year_label(entry: Any) -> str:
    """``Song et al., 2020``; ``Hochreiter and Schmidhuber, 1997``; ``Pennington, 2014``."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain_text(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not names:
        who = _plain_text(entry.fields.get("title", entry.key)).split(":")[0]
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def _author_year_style():
    from pybtex.style.formatting.plain import Style as Plain
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = [author_year_label(e) for e in sorted_entries]
            total, seen = Counter(labels), Counter()
            for label in labels:
                if total[label] > 1:  # "Zhang et al., 2020a", "... 2020b", in the list's order
                    seen[label] += 1
                    label += string.ascii_lowercase[seen[label] - 1]
                yield label

    class AuthorYearStyle(Plain):
        default_sorting_style = "author_year_title"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.label_style = AuthorYearLabels()
            self.format_labels = self.label_style.format_labels

    return AuthorYearStyle


def register_bibliography_style() -> None:
    import pybtex.plugin

    try:
        pybtex.plugin.find_plugin("pybtex.style.formatting", "wsg_author_year")
    except pybtex.plugin.PluginNotFound:
        pybtex.plugin.register_plugin("pybtex.style.formatting", "wsg_author_year", _author_year_style())


def setup(app: Sphinx) -> dict:
    register_bibliography_style()
    # after sphinx-exercise, whose directive this one replaces
    app.setup_extension("sphinx_exercise")
    app.add_node(hidden_solution_start)
    app.add_directive("solution-start", _solution_start_directive(), override=True)
    app.add_transform(RemoveHiddenGatedSolutions)
    app.connect("builder-inited", add_static_path)
    app.connect("builder-inited", numpy_scalars_in_glue)
    app.connect("builder-inited", placeholder_glue_when_not_executed)
    app.connect("builder-inited", html_handlers_for_singlehtml)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    # after sphinx-book-theme's add_launch_buttons (priority 501), which builds the link
    app.connect("html-page-context", colab_launch_to_copy, priority=600)
    app.add_css_file("wsg.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
