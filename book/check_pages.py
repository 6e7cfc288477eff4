"""Check the built book's pages in headless Chromium; exit 1 with a list of defects.

    .venv/bin/python book/check_pages.py _build/html [--json defects.json] [--page notebooks/02_marn.html]

``make book`` runs it on the executed student edition, ``make book-instructor`` on the instructor
edition. Every page is served from 127.0.0.1 (``http.server`` in a thread) and opened in headless
Chromium (Debian's ``chromium``; ``make browser`` installs it) as tests/test_site.py does: external
hosts are unreachable by design (``--host-resolver-rules``), so the check is the same offline and
online, and MathJax (loaded from its CDN) does not typeset. A probe script added to each served page
(never to the files) measures the laid-out page after ``load`` and writes what it finds into
``<body data-wsg-defects>``, which ``--dump-dom`` returns. A defect is:

``wide``
    an element that reaches past the main column (the article's content box, window 1280 px
    wide), unless it sits inside a scroll container a reader expects: a code block (``pre``,
    ``.highlight``), a cell output (``.cell_output``), a table wrapper or display math.
``text``
    a cell output whose text shows ``NaN``, ``np.float64(``, ``<function ``, ``Warning`` (any
    warning class or message) or a machine path (``/tmp/``, ``/home/``, ``/work/``).
``explorer``
    an explorer (the printed line "in a live notebook, a slider steps through all") with no image
    after it in its cell.
``answer``
    a cell output between an exercise and its solution, or, where the edition has no solution
    (the student edition), between an exercise and the next exercise or the end of its section:
    an answer in the open, approximately.
``image``
    an image shown at less than 60 % of its natural width (shrunk until unreadable: draw it for
    the column instead).
``search``
    more than one visible search box on a page.

Without a browser the script fails when ``CI`` is set and otherwise skips with a message (exit 0),
as tests/test_site.py does.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TEXT_PATTERNS = ("NaN", "np.float64(", "<function ", "Warning", "/tmp/", "/home/", "/work/")
EXPLORER_LINE = "in a live notebook, a slider steps through all"
MIN_IMAGE_SCALE = 0.6
#: scroll containers a reader expects to scroll sideways
EXPECTED_SCROLLERS = ("pre, .highlight, .cell_output, .output, .pst-scrollable-table-container, "
                      ".table-wrapper, div.math, .math-wrapper, mjx-container, .MathJax, .MathJax_Display")

PROBE = """<script>(function () {
  var PATTERNS = %(patterns)s, EXPLORER = %(explorer)s, MIN_SCALE = %(min_scale)s;
  var EXPECTED = %(expected)s;
  function visible(el) {
    if (!el.getClientRects().length) return false;
    var s = getComputedStyle(el);
    return s.visibility !== "hidden" && s.display !== "none";
  }
  function where(el) {
    var s = el.closest("section[id]");
    return s ? "#" + s.id : "";
  }
  function name(el) {
    var s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    var c = Array.prototype.slice.call(el.classList, 0, 3);
    if (c.length) s += "." + c.join(".");
    return s;
  }
  function text(el) {
    return (el.innerText || el.textContent || "").replace(/\\s+/g, " ").trim();
  }
  function scroller(el, stop) {
    for (var p = el.parentElement; p && p !== stop; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden" || o === "clip") return p;
    }
    return null;
  }
  function check() {
    var defects = [];
    function add(kind, el, detail) {
      defects.push({kind: kind, where: where(el), element: name(el), detail: detail});
    }
    var article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
    var box = article.getBoundingClientRect(), cs = getComputedStyle(article);
    var left = box.left + parseFloat(cs.paddingLeft) - 2, right = box.right - parseFloat(cs.paddingRight) + 2;

    // wide: outermost elements past the column, outside an expected scroll container
    var reported = [];
    article.querySelectorAll("*").forEach(function (el) {
      for (var i = 0; i < reported.length; i++) if (reported[i].contains(el)) return;
      var r = el.getBoundingClientRect();
      if (r.width <= 2 || r.height <= 2 || (r.left >= left && r.right <= right)) return;
      if (!visible(el) || getComputedStyle(el).position === "fixed") return;
      var sc = scroller(el, article);
      if (sc) {
        var sr = sc.getBoundingClientRect();
        var inside = sr.left >= left && sr.right <= right;
        var scrolls = ["auto", "scroll"].indexOf(getComputedStyle(sc).overflowX) >= 0;
        if (inside && scrolls && (sc.matches(EXPECTED) || sc.closest(EXPECTED))) return;
        if (inside && !scrolls) {  // cut off by overflow: hidden
          if (r.right <= sr.right + 1 && r.left >= sr.left - 1) return;
          reported.push(el);
          add("wide", el, "cut off at the column's edge inside " + name(sc) + ": " + text(el).slice(0, 60));
          return;
        }
        if (inside) {
          reported.push(el);
          add("wide", el, "scrolls sideways inside " + name(sc) + ", not a code, output, table or math block: "
              + text(el).slice(0, 60));
          return;
        }
      }
      reported.push(el);
      add("wide", el, Math.round(r.width) + " px wide, the column " + Math.round(right - left - 4) +
          " px: " + (text(el) || el.getAttribute("src") || "").slice(0, 60));
    });

    // text: what a reader should never see in an output
    article.querySelectorAll(".cell_output").forEach(function (out) {
      var t = out.innerText || out.textContent || "";
      PATTERNS.forEach(function (p) {
        var i = p === "NaN" ? t.search(/\\bNaN\\b/) : t.indexOf(p);
        if (i >= 0) add("text", out, JSON.stringify(p) + " in an output: ..." +
                        t.slice(Math.max(0, i - 40), i + 40).replace(/\\s+/g, " ") + "...");
      });
    });

    // explorer: the printed line, then an image in the same cell
    article.querySelectorAll(".cell_output").forEach(function (out) {
      if ((out.textContent || "").indexOf(EXPLORER) < 0) return;
      var cell = out.closest(".cell") || out, seen = false, image = false;
      cell.querySelectorAll("*").forEach(function (el) {
        if (!seen && el.children.length === 0 && (el.textContent || "").indexOf(EXPLORER) >= 0) seen = true;
        else if (!seen && (el.textContent || "").indexOf(EXPLORER) >= 0 && el.tagName === "PRE") seen = true;
        if (seen && (el.tagName === "IMG" || el.tagName === "svg")) image = true;
      });
      if (!image) add("explorer", out, "an explorer with no image after its line: " +
                      text(out).slice(0, 80));
    });

    // answer: an output between an exercise and its solution (or the next exercise)
    article.querySelectorAll(".exercise").forEach(function (ex) {
      if (ex.classList.contains("solution")) return;
      for (var s = ex.nextElementSibling; s; s = s.nextElementSibling) {
        if (s.classList.contains("exercise") || s.classList.contains("solution") || s.tagName === "SECTION") break;
        var outs = s.classList.contains("cell_output") ? [s] : Array.prototype.slice.call(s.querySelectorAll(".cell_output"));
        outs.forEach(function (o) {
          if (text(o)) add("answer", o, "an output after exercise " + (ex.id || text(ex).slice(0, 30)) +
                           " and before its solution: " + text(o).slice(0, 60));
        });
      }
    });

    // image: shown below MIN_SCALE of its natural width
    article.querySelectorAll("img").forEach(function (img) {
      if (!visible(img) || !img.naturalWidth) return;
      var shown = img.getBoundingClientRect().width;
      if (shown < MIN_SCALE * img.naturalWidth)
        add("image", img, "shown " + Math.round(shown) + " px of its natural " + img.naturalWidth + " px (" +
            Math.round(100 * shown / img.naturalWidth) + " %%): " + (img.getAttribute("alt") || img.getAttribute("src") || "").slice(0, 60));
    });

    // search: visible search boxes on the page
    var boxes = Array.prototype.filter.call(
      document.querySelectorAll(".search-button-field, button.search-button, input[type=search], form.bd-search"),
      function (el) { return visible(el) && !(el.closest("dialog") && !el.closest("dialog").open); });
    if (boxes.length > 1)
      add("search", document.body, boxes.length + " search boxes: " + boxes.map(name).join(", "));
    return defects;
  }
  window.addEventListener("load", function () {
    setTimeout(function () {
      var d;
      try { d = check(); } catch (e) { d = [{kind: "probe", where: "", element: "", detail: String(e)}]; }
      document.body.setAttribute("data-wsg-defects", JSON.stringify(d));
    }, 0);
  });
})();</script>""" % {"patterns": json.dumps(TEXT_PATTERNS), "explorer": json.dumps(EXPLORER_LINE),
                     "min_scale": MIN_IMAGE_SCALE, "expected": json.dumps(EXPECTED_SCROLLERS)}


def find_browser() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def chromium(browser: str, url: str, *extra: str, height: int = 1400, width: int = 1280,
             timeout: int = 120) -> subprocess.CompletedProcess:
    """Headless Chromium as tests/test_site.py runs it: no network but 127.0.0.1, a fresh profile."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
               "--virtual-time-budget=10000", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class Server:
    """The site on 127.0.0.1 (a free port), with ``probe`` added to the head of every HTML page."""

    def __init__(self, site: Path, probe: str = ""):
        probe_bytes = probe.encode()

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_head(self):
                path = self.translate_path(self.path)
                if os.path.isdir(path):
                    path = os.path.join(path, "index.html")
                if not probe_bytes or not path.endswith(".html") or not os.path.isfile(path):
                    return super().send_head()
                body = Path(path).read_bytes().replace(b"<head>", b"<head>" + probe_bytes, 1)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return io.BytesIO(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def pages_of(site: Path) -> list[str]:
    """The book's pages: every HTML file but Sphinx's own (search, index) and the redirect."""
    skip = {"genindex.html", "search.html", "index.html", "py-modindex.html"}
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).parts[0].startswith("_") and p.name not in skip)


def check_page(browser: str, base: str, page: str, width: int = 1280) -> list[dict]:
    import re

    for _ in range(3):  # a busy machine can run out of the virtual-time budget before `load`
        result = chromium(browser, f"{base}/{page}", "--dump-dom", width=width)
        m = re.search(r'data-wsg-defects="([^"]*)"', result.stdout)
        if m:
            import html

            return [dict(d, page=page) for d in json.loads(html.unescape(m.group(1)))]
    return [{"page": page, "kind": "load", "where": "", "element": "",
             "detail": "the page did not finish loading: " + result.stderr[-300:]}]


def check_site(site: Path, pages: list[str] | None = None, browser: str | None = None,
               width: int = 1280) -> list[dict]:
    browser = browser or find_browser()
    pages = pages or pages_of(site)
    with Server(site, PROBE) as server, ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda p: check_page(browser, server.url, p, width), pages))
    return [d for found in results for d in found]


def report(defects: list[dict]) -> str:
    lines = []
    for d in defects:
        lines.append(f"{d['page']}{d['where']}: {d['kind']}: {d['detail']}  [{d['element']}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built HTML, e.g. _build/html")
    parser.add_argument("--page", action="append", help="check only this page (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the defects here, as JSON")
    parser.add_argument("--width", type=int, default=1280, help="the window's width in px (default 1280)")
    args = parser.parse_args(argv)
    if not (args.site / "search.html").is_file():
        print(f"check_pages: {args.site} is not a built book", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        message = ("check_pages: headless Chromium not found (`make browser` installs Debian's chromium); "
                   "the pages were not checked")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            print(message, file=sys.stderr)
            return 1
        print(message + " (skipped because CI is not set)", file=sys.stderr)
        return 0
    pages = args.page or pages_of(args.site)
    defects = check_site(args.site, pages, browser, args.width)
    if args.json:
        args.json.write_text(json.dumps(defects, indent=1))
    if defects:
        counts: dict[str, int] = {}
        for d in defects:
            counts[d["kind"]] = counts.get(d["kind"], 0) + 1
        print(report(defects))
        print(f"check_pages: {len(defects)} defects on {len({d['page'] for d in defects})} of {len(pages)} "
              f"pages ({', '.join(f'{k}: {n}' for k, n in sorted(counts.items()))})", file=sys.stderr)
        return 1
    print(f"check_pages: {len(pages)} pages, no defect")
    return 0


if __name__ == "__main__":
    sys.exit(main())
