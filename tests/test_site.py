"""The built book, opened in a real browser: what a reader of the site needs.

The book is built as ``make book-check`` builds it (the same ``_config.yml``, execution
off: nbval executes the chapters elsewhere in the suite) into ``_build/site-check-*`` (removed
afterwards), served
on 127.0.0.1 by ``http.server`` in a thread, and every page is loaded in headless Chromium
(Debian's ``chromium`` package; ``make test`` installs it through ``make browser``).
Chromium's ``--dump-dom`` returns each page's DOM after its scripts ran. To see what the
scripts did, the server adds one probe ``<script>`` at the top of every HTML page it serves
(never to the files on disk): it records uncaught errors, failed resource loads and
``console.error`` calls, and after ``load`` the code blocks whose lines overflow their column,
and writes both into attributes of ``<body>``.

External hosts are unreachable by design (``--host-resolver-rules``): the check is the same
offline and online, and what is asserted is ours. MathJax therefore does not typeset here;
display equations are checked as the math markup MathJax reads (``div.math`` with ``\\[..\\]``).

Set ``WSG_SITE=_build/html`` to check an existing (executed, ``make book``) build instead; then
every figure cell must also have an image. Without a browser the test fails when ``CI`` is
set and is skipped otherwise (a developer without root cannot install an OS package).
Screenshots of three pages are written to ``_build/screenshots/``.
"""
from __future__ import annotations

import functools
import html
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SCREENSHOTS = {  # page -> (window height, scroll to the first section whose id has this word)
    "book/preface.html": (1400, None),
    "notebooks/02_marn.html": (2400, None),  # the hidden pipeline-diagram input, wrapped code
    "notebooks/05_fsan.html": (1800, "hinge"),  # display equations that used to be raw $$
}
PROBE = """<script>(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target, src = (t && t !== window) ? (t.src || t.href || "") : (e.filename || "");
    errors.push({kind: (t && t !== window) ? "resource" : "script", message: e.message || "", source: src});
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    errors.push({kind: "promise", message: String(e.reason), source: ""});
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push({kind: "console.error", message: Array.prototype.join.call(arguments, " "), source: ""});
    return consoleError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    setTimeout(function () {
      var overflow = [];
      document.querySelectorAll('div[class^="highlight-"] pre').forEach(function (pre) {
        if (pre.closest(".cell_output")) return;
        if (pre.getClientRects().length && pre.scrollWidth > pre.clientWidth + 1)
          overflow.push(pre.textContent.split("\\n")[0].slice(0, 60));
      });
      var sections = {};
      document.querySelectorAll("section[id]").forEach(function (el) {
        if (!(el.id in sections)) sections[el.id] = Math.round(el.getBoundingClientRect().top + window.scrollY);
      });
      document.body.setAttribute("data-wsg-sections", JSON.stringify(sections));
      document.body.setAttribute("data-wsg-errors", JSON.stringify(errors));
      document.body.setAttribute("data-wsg-overflow", JSON.stringify(overflow));
    }, 0);
  });
})();</script>"""


# ------------------------------------------------------------------------------- helpers
class Tree(HTMLParser):
    """A minimal DOM: elements with tag, attributes, parent and text children, in order."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root = {"tag": "#root", "attrs": {}, "children": [], "parent": None}
        self.node = self.root
        self.elements: list[dict] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": {k: v or "" for k, v in attrs}, "children": [], "parent": self.node}
        self.node["children"].append(el)
        self.elements.append(el)
        if tag not in self.VOID:
            self.node = el

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.node = self.node["parent"]

    def handle_endtag(self, tag):
        node = self.node
        while node is not self.root and node["tag"] != tag:
            node = node["parent"]
        if node is not self.root:
            self.node = node["parent"]

    def handle_data(self, data):
        self.node["children"].append(data)

    def find(self, predicate) -> list[dict]:
        return [el for el in self.elements if predicate(el)]


def classes(el: dict) -> set[str]:
    return set(el["attrs"].get("class", "").split())


def text_of(el: dict) -> str:
    return "".join(c if isinstance(c, str) else text_of(c) for c in el["children"])


def descendants(el: dict):
    for child in el["children"]:
        if isinstance(child, dict):
            yield child
            yield from descendants(child)


def prose_text(el: dict) -> str:
    """Text a reader sees as prose: everything but code, math, scripts and the like."""
    skip_tags = {"pre", "code", "script", "style", "svg", "title", "textarea", "kbd", "samp"}
    skip_classes = {"math", "highlight", "MathJax"}
    if isinstance(el, str):
        return el
    if el["tag"] in skip_tags or classes(el) & skip_classes:
        return ""
    return "".join(prose_text(c) for c in el["children"])


def _without_code(text: str) -> str:
    """The Markdown without its fenced code blocks; directive fences (```{name}) keep their content."""
    kept, stack, code = [], [], None
    for line in text.split("\n"):
        fence = re.match(r"^(`{3,})(.*)$", line.strip())
        if code is not None:  # inside a code block: only its own fence closes it
            if fence and fence.group(1) == code and not fence.group(2).strip():
                code = None
            continue
        if fence and not fence.group(2).strip() and stack and stack[-1] == fence.group(1):
            stack.pop()  # a directive closes
        elif fence and fence.group(2).startswith("{"):
            stack.append(fence.group(1))  # a directive opens: its body is prose
        elif fence:
            code = fence.group(1)  # a code block opens
        else:
            kept.append(line)
    return "\n".join(kept)


def display_math_in_source(page: str) -> int:
    """Display equations written in a page's source: ``$$ .. $$`` blocks and ``{math}`` directives."""
    if page.startswith("notebooks/"):
        nb = json.loads((ROOT / page).with_suffix(".ipynb").read_text())
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    else:
        text = (ROOT / page).with_suffix(".md").read_text()
    text = _without_code(text)
    return len(re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)) + len(re.findall(r"^```\{math\}", text, flags=re.M))


def find_browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    message = ("headless Chromium not found: `make browser` installs Debian's `chromium` "
               "(or `apt-get install chromium`); tests/test_site.py needs it")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message + " (skipped because CI is not set)")


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def browser() -> str:
    return find_browser()


@pytest.fixture(scope="module")
def site(browser):
    """The built HTML: ``$WSG_SITE`` when given, else a fresh build with execution off."""
    if os.environ.get("WSG_SITE"):
        path = Path(os.environ["WSG_SITE"]).resolve()
        assert (path / "book" / "preface.html").is_file(), f"WSG_SITE={path} is not a built book"
        yield path
        return
    # a folder of its own: several runs of the suite may share one checkout
    (ROOT / "_build").mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="site-check-", dir=ROOT / "_build"))
    config = json.loads(json.dumps(CONFIG))
    config["execute"]["execute_notebooks"] = "off"
    # local extension paths are resolved against the config file's folder: make them absolute
    ext = config.get("sphinx", {}).get("local_extensions") or {}
    for name, path in ext.items():
        ext[name] = str(ROOT / path)
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(out), "--config", str(out / "_config.yml"),
           "-W", "--keep-going"]
    try:
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400)
        assert result.returncode == 0, f"book build failed:\n{result.stderr[-3000:]}\n{result.stdout[-1500:]}"
        yield out / "_build" / "html"
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def server(site):
    """``http.server`` on 127.0.0.1 (a free port) in a daemon thread; logs every request."""
    log: list[tuple[str, str, int]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def log_request(self, code="-", size="-"):
            log.append((self.headers.get("Referer", ""), self.path, int(getattr(code, "value", code))))

        def send_head(self):
            path = self.translate_path(self.path)
            if os.path.isdir(path):
                path = os.path.join(path, "index.html")
            if not path.endswith(".html") or not os.path.isfile(path):
                return super().send_head()
            body = Path(path).read_bytes()
            body = body.replace(b"<head>", b"<head>" + PROBE.encode(), 1)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def chromium(browser: str, url: str, *extra: str, height: int = 1400) -> subprocess.CompletedProcess:
    """Headless Chromium, run the one way the page checks run it (book/check_pages.py)."""
    return _check_pages().chromium(browser, url, *extra, height=height, timeout=90)


@functools.lru_cache(maxsize=1)
def _check_pages():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_pages", ROOT / "book" / "check_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(site, server, browser) -> dict[str, Tree]:
    """Every page of the book, as Chromium leaves its DOM after the page's scripts ran."""
    base, _ = server
    # index.html only redirects to the root page (checked in the first test)
    names = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if not p.relative_to(site).parts[0].startswith("_") and p.name != "index.html")

    def dump(name: str) -> tuple[str, Tree]:
        for _ in range(3):  # a busy machine can run out of the virtual-time budget before `load`
            result = chromium(browser, f"{base}/{name}", "--dump-dom")
            tree = Tree(result.stdout)
            if any(el["tag"] == "body" and "data-wsg-overflow" in el["attrs"] for el in tree.elements):
                return name, tree
        raise AssertionError(f"{name}: the page did not finish loading\n{result.stderr[-2000:]}")

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(dump, names))


# --------------------------------------------------------------------------------- tests
def test_every_chapter_and_page_is_built_and_loads(pages, site):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert f'url={toc["root"]}.html' in (site / "index.html").read_text(), "index.html does not open the book"
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for file in files:
        page = pages.get(f"{file}.html")
        assert page is not None, f"{file}: no page in the built site"
        h1 = page.find(lambda el: el["tag"] == "h1")
        assert h1 and text_of(h1[0]).strip(), f"{file}: no title"
        main = page.find(lambda el: el["tag"] == "article")
        assert main and len(text_of(main[0])) > 500, f"{file}: empty article"


def test_no_errors_from_our_own_assets(pages, server):
    base, log = server
    problems = []
    for name, page in pages.items():
        body = page.find(lambda el: el["tag"] == "body")[0]
        for err in json.loads(body["attrs"]["data-wsg-errors"]):
            external = err["source"].startswith(("http://", "https://")) and not err["source"].startswith(base)
            if not external:
                problems.append(f"{name}: {err['kind']}: {err['message']} {err['source']}")
    failed = sorted({(ref.replace(base, ""), path) for ref, path, code in log
                     if code >= 400 and path != "/favicon.ico"})
    assert not problems, "errors in the browser console:\n" + "\n".join(problems)
    assert not failed, f"requests for missing files (page, path): {failed}"


def test_display_equations_are_math_markup(pages):
    checked = 0
    for name, page in pages.items():
        if not (name.startswith("notebooks/") or name.startswith("book/")):
            continue
        maths = page.find(lambda el: el["tag"] == "div" and "math" in classes(el))
        expected = display_math_in_source(name)
        assert len(maths) == expected, f"{name}: {expected} display equations in the source, {len(maths)} rendered"
        for m in maths:  # labelled ones start with their number: "(1)#\[ ... \]"
            tex = text_of(m).strip()
            assert "\\[" in tex[:12] and tex.endswith("\\]"), f"{name}: display math not delimited: {tex[:80]}"
        checked += expected
    assert checked > 40


def test_no_unparsed_dollar_in_prose(pages):
    for name, page in pages.items():
        article = page.find(lambda el: el["tag"] == "article")
        if not article:
            continue
        text = prose_text(article[0])
        stray = [m.start() for m in re.finditer(r"\$", text)]
        context = [text[max(0, i - 40): i + 40].replace("\n", " ") for i in stray[:5]]
        assert not stray, f"{name}: {len(stray)} unparsed '$' in prose, e.g. {context}"


def test_student_edition_shows_exercises_without_solutions(pages):
    """The site is the student edition (``hide_solutions``); tests/test_editions.py checks the
    instructor edition's folded solutions."""
    for stem in CHAPTERS:
        page = pages[f"notebooks/{stem}.html"]
        exercises = page.find(lambda el: {"exercise", "admonition"} <= classes(el))
        assert len(exercises) >= 4, f"{stem}: {len(exercises)} exercises on the page"
        solutions = page.find(lambda el: "solution" in classes(el))
        assert not solutions, f"{stem}: the student edition shows {len(solutions)} solutions"


def _visible_search_boxes(page: Tree) -> list[dict]:
    """Search fields and buttons the theme shows: the navbar's copies are gone (navbar_persistent)."""
    return page.find(lambda el: el["tag"] in ("button", "input", "form") and (
        "search-button-field" in classes(el) or "search-button" in classes(el)
        or el["attrs"].get("type") == "search" or "bd-search" in classes(el)))


def test_one_search_box_per_page(pages):
    """One field in the sidebar (wide windows) and the header's search button (narrow windows: the
    theme shows it only there); book/check_pages.py counts the visible ones on the laid-out page."""
    for name, page in pages.items():
        boxes = _visible_search_boxes(page)
        fields = [b for b in boxes if "search-button-field" in classes(b)]
        buttons = [b for b in boxes if "search-button" in classes(b) and b not in fields]
        assert len(fields) == 1, f"{name}: {len(fields)} search fields"
        assert len(buttons) <= 1, f"{name}: {len(buttons)} search buttons"


def test_every_page_states_its_licence_and_links_the_issue_tracker(pages):
    repo = CONFIG["repository"]["url"].rstrip("/")
    for name, page in pages.items():
        footer = page.find(lambda el: "wsg-licence" in classes(el))
        assert footer, f"{name}: no licence in the footer"
        hrefs = {el["attrs"].get("href", "") for el in descendants(footer[0]) if el["tag"] == "a"}
        assert "https://creativecommons.org/licenses/by/4.0/" in hrefs, f"{name}: no CC BY 4.0 link"
        assert any(h.endswith("/LICENSE") for h in hrefs), f"{name}: no link to the code's licence"
        issues = page.find(lambda el: el["tag"] == "a" and el["attrs"].get("href", "").startswith(f"{repo}/issues/new"))
        assert issues, f"{name}: no 'open issue' link to {repo}/issues/new"


def test_the_root_is_a_cover_page(pages):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["root"] == "book/cover"
    cover = pages["book/cover.html"]
    h1 = text_of(cover.find(lambda el: el["tag"] == "h1")[0])
    assert CONFIG["title"] in h1, h1
    article = cover.find(lambda el: el["tag"] == "article")[0]
    text = " ".join(text_of(article).split())
    assert "Who it is for" in text
    links = {el["attrs"].get("href", "").split("#")[0] for el in descendants(article) if el["tag"] == "a"}
    assert "preface.html" in links, "the cover does not link the preface"
    for stem in CHAPTERS:
        assert f"../notebooks/{stem}.html" in links, f"the cover does not link {stem}"


def test_bibliography_is_author_year_with_links(pages):
    page = pages["book/bibliography.html"]
    entries = page.find(lambda el: el["tag"] == "div" and "citation" in classes(el))
    bib = (ROOT / "book" / "references.bib").read_text()
    assert 20 <= len(entries) <= len(re.findall(r"^@\w+\{", bib, re.M))  # the cited ones
    for entry in entries:
        label = text_of(next(el for el in descendants(entry) if "label" in classes(el))).strip("[] ")
        assert re.fullmatch(r"[A-Z][^,\[\]]+(?: et al\.)?, \d{4}[a-z]?", label), f"not an author-year label: {label!r}"
        external = [el for el in descendants(entry) if el["tag"] == "a" and el["attrs"].get("href", "").startswith("http")]
        assert external, f"{label}: no DOI or URL link"


def test_preface_shows_the_chapter_map(pages, site):
    page = pages["book/preface.html"]
    images = [el for el in page.elements if el["tag"] == "img" and "chapter_map" in el["attrs"].get("src", "")]
    assert images and images[0]["attrs"].get("alt"), "the preface's chapter map is missing or has no alt text"
    figure = page.find(lambda el: el["tag"] == "figure" and el["attrs"].get("id") == "fig-preface-chapter-map")
    assert figure and "Fig." in text_of(figure[0]), "the chapter map is not a numbered figure"


def test_colab_launch_links_point_at_each_colab_copy(pages):
    """Colab opens the chapter's Colab copy (colab/, plain Markdown; book/colab.py), not the MyST notebook."""
    repo = CONFIG["repository"]
    org_repo = urlsplit(repo["url"]).path.strip("/")
    colab = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    for stem in CHAPTERS:
        page = pages[f"notebooks/{stem}.html"]
        links = {el["attrs"]["href"] for el in page.find(lambda el: el["tag"] == "a" and
                                                           el["attrs"].get("href", "").startswith(colab))}
        want = f"{colab}/github/{org_repo}/blob/{repo['branch']}/colab/{stem}.ipynb"
        assert links == {want}, f"{stem}: Colab links {links}, want {want}"
        assert (ROOT / "colab" / f"{stem}.ipynb").is_file()


def test_no_internal_link_is_broken(pages, site, server):
    base, _ = server
    ids: dict[str, set[str]] = {}

    def ids_of(target: str) -> set[str]:
        if target not in ids:
            tree = pages.get(target) or Tree((site / target).read_text(errors="replace"))
            ids[target] = {el["attrs"]["id"] for el in tree.elements if "id" in el["attrs"]}
            ids[target] |= {el["attrs"]["name"] for el in tree.elements if el["tag"] == "a" and "name" in el["attrs"]}
        return ids[target]

    broken, checked = [], 0
    for name, page in pages.items():
        page_url = f"{base}/{name}"
        for el in page.elements:
            ref = el["attrs"].get("href") if el["tag"] in ("a", "link") else el["attrs"].get("src")
            if not ref or el["tag"] not in ("a", "link", "img", "script", "iframe", "source"):
                continue
            url = urljoin(page_url, html.unescape(ref))
            if not url.startswith(base + "/"):
                continue  # external, mailto:, javascript:, data:
            parts = urlsplit(url)
            target = unquote(parts.path)[1:] or "index.html"
            if target.endswith("/"):
                target += "index.html"
            checked += 1
            if not (site / target).is_file():
                broken.append(f"{name}: {ref} (no file {target})")
            elif parts.fragment and target.endswith(".html") and unquote(parts.fragment) not in ids_of(target):
                broken.append(f"{name}: {ref} (no #{parts.fragment} in {target})")
    assert checked > 200
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(sorted(set(broken))[:30])


def test_diagram_code_is_hidden_and_code_lines_stay_in_the_column(pages):
    n_diagrams = 0
    for stem in CHAPTERS:
        page = pages[f"notebooks/{stem}.html"]
        cells = page.find(lambda el: el["tag"] == "div" and "cell" in classes(el))
        diagrams = [c for c in cells if "def box(" in text_of(c) and "def arrow(" in text_of(c)]
        n_diagrams += len(diagrams)
        for cell in diagrams:
            assert "tag_hide-input" in classes(cell), f"{stem}: figure-drawing code shown in full"
            details = [d for d in cell["children"] if isinstance(d, dict) and d["tag"] == "details"]
            assert details and "open" not in details[0]["attrs"], f"{stem}: diagram code not collapsed"
        body = page.find(lambda el: el["tag"] == "body")[0]
        overflow = json.loads(body["attrs"]["data-wsg-overflow"])
        assert not overflow, f"{stem}: code lines run off the column: {overflow[:5]}"
    assert n_diagrams >= 5, "pipeline diagrams not found: the check no longer looks at them"


def shown_code_cells(stem: str, solutions_shown: bool = False) -> list[dict]:
    """The notebook's code cells that appear on its page: not ``remove-cell`` ones, and in the
    student edition (solutions hidden) not those of a gated solution (``solution-start`` ... ``-end``)."""
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    shown, gated = [], False
    for c in nb["cells"]:
        source = "".join(c["source"])
        if c["cell_type"] == "markdown":
            for marker in re.findall(r"\{solution-(start|end)\}", source):  # in order: the last one wins
                gated = marker == "start"
            continue
        if c["cell_type"] != "code" or {"remove-cell", "remove_cell"} & set(c.get("metadata", {}).get("tags", [])):
            continue
        if gated and not solutions_shown:
            continue
        shown.append(c)
    return shown


def solutions_shown(page: "Tree") -> bool:
    """Whether the page is of the instructor edition (its solutions are on the page)."""
    return bool(page.find(lambda el: {"solution", "admonition"} <= classes(el)))


def page_cells(page: Tree) -> list[dict]:
    return page.find(lambda el: el["tag"] == "div" and {"cell", "docutils"} <= classes(el))


def test_code_cells_on_the_page_match_the_notebook(pages):
    """The cell-by-cell mapping that the figure check relies on holds in every build."""
    for stem in CHAPTERS:
        page = pages[f"notebooks/{stem}.html"]
        shown, cells = shown_code_cells(stem, solutions_shown(page)), page_cells(page)
        assert len(cells) == len(shown), f"{stem}: {len(shown)} code cells, {len(cells)} on the page"
        for cell, div in zip(shown, cells):
            first = next((line for line in "".join(cell["source"]).splitlines() if line.strip()), "")
            assert first.strip() in text_of(div), f"{stem}: cell {cell.get('id')} out of place"


def test_figure_cells_have_images_in_an_executed_build(pages):
    if not os.environ.get("WSG_SITE"):
        pytest.skip("the test's own build is not executed: set WSG_SITE=_build/html after `make book`")
    for stem in CHAPTERS:
        page = pages[f"notebooks/{stem}.html"]
        for cell, div in zip(shown_code_cells(stem, solutions_shown(page)), page_cells(page)):
            if "plt.show()" in "".join(cell["source"]):
                assert any(el["tag"] == "img" for el in descendants(div)), \
                    f"{stem}: figure cell {cell.get('id')} has no image"


def test_screenshots(server, browser, pages):
    base, _ = server
    out = ROOT / "_build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)

    def shoot(item):
        # headless Chromium draws a blank page when it scrolls to a #fragment, so a section
        # further down is shot in a tall window and cropped (matplotlib reads and writes PNG)
        name, (height, word) = item
        body = pages[name].find(lambda el: el["tag"] == "body")[0]
        tops = [top for sid, top in json.loads(body["attrs"]["data-wsg-sections"]).items() if word and word in sid]
        top = max(0, tops[0] - 80) if tops else 0
        png = out / (name.replace("/", "_").replace(".html", ".png"))
        png.unlink(missing_ok=True)
        chromium(browser, f"{base}/{name}", f"--screenshot={png}", height=top + height)
        if top and png.is_file():
            import matplotlib.image

            matplotlib.image.imsave(png, matplotlib.image.imread(png)[top: top + height])
        return png

    with ThreadPoolExecutor(max_workers=3) as pool:
        shots = list(pool.map(shoot, SCREENSHOTS.items()))
    for png in shots:
        assert png.is_file() and png.stat().st_size > 20_000, f"no screenshot {png}"
