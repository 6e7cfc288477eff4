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
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

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


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", add_static_path)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    # after sphinx-book-theme's add_launch_buttons (priority 501), which builds the link
    app.connect("html-page-context", colab_launch_to_copy, priority=600)
    app.add_css_file("wsg.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
