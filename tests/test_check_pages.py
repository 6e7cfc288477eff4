"""book/check_pages.py finds each kind of defect, and only those, on small hand-written pages.

The pages imitate the built book's markup (``article.bd-article``, myst-nb's ``.cell`` /
``.cell_output``, sphinx-exercise's ``.exercise`` / ``.solution``, the theme's search field) and are
checked in headless Chromium as the book is. Without a browser the test fails when ``CI`` is set
and is skipped otherwise, as tests/test_site.py is.
"""
from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
import check_pages  # noqa: E402

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>
<style>body {{ margin: 0; font: 16px sans-serif; }} article.bd-article {{ width: 700px; margin-left: 100px; }}
.cell_output {{ overflow-x: auto; }} pre {{ margin: 0; }}</style></head>
<body><button class="btn search-button-field">Search</button>
<article class="bd-article"><section id="s"><h1>Page</h1>{body}</section></article></body></html>"""

CLEAN = """
<p>Prose that wraps inside the column, with a {glue} number.</p>
<div class="cell"><div class="cell_output"><pre>{long_line}</pre></div></div>
<div class="cell"><div class="cell_output"><pre>query 1 of 5 (in a live notebook, a slider steps through all 5)</pre>
<img src="small.png" alt="a figure"></div></div>
<div class="exercise admonition" id="ex1"><p>Exercise text.</p></div>
<div class="solution admonition dropdown"><div class="cell"><div class="cell_output"><pre>42</pre></div></div></div>
<img src="big.png" alt="big at its width" style="width: 600px">
""".format(glue="3.2", long_line="x" * 400)

DEFECTS = {
    "wide": '<div style="width: 1100px; background: #eee">a block wider than the column</div>',
    "text": '<div class="cell"><div class="cell_output"><pre>np.float64(0.5) at /tmp/run NaN</pre></div></div>',
    "explorer": '<div class="cell"><div class="cell_output"><pre>query 1 of 5 (in a live notebook, a slider steps '
                'through all 5)</pre></div></div>',
    "answer": '<div class="exercise admonition" id="ex2"><p>What is it?</p></div>'
              '<div class="cell"><div class="cell_output"><pre>the answer: 42</pre></div></div>',
    "image": '<img src="big.png" alt="shrunk" style="width: 200px">',
    "search": '<button class="btn search-button-field">Search again</button>',
}


def _png(path: Path, width: int, height: int) -> None:
    """A grey PNG of the given size, written without any imaging library."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def browser():
    path = check_pages.find_browser()
    if path is None:
        message = "headless Chromium not found: `make browser` installs Debian's chromium"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message + " (skipped because CI is not set)")
    return path


@pytest.fixture(scope="module")
def found(browser, tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "search.html").write_text("<html></html>")
    _png(site / "small.png", 300, 120)
    _png(site / "big.png", 600, 200)
    (site / "clean.html").write_text(PAGE.format(body=CLEAN))
    for kind, html in DEFECTS.items():
        (site / f"defect-{kind}.html").write_text(PAGE.format(body=html))
    assert check_pages.pages_of(site) == sorted(["clean.html"] + [f"defect-{k}.html" for k in DEFECTS])
    defects = check_pages.check_site(site, browser=browser)
    by_page: dict[str, list[dict]] = {}
    for d in defects:
        by_page.setdefault(d["page"], []).append(d)
    return by_page


def test_a_clean_page_has_no_defect(found):
    assert "clean.html" not in found, check_pages.report(found["clean.html"])


@pytest.mark.parametrize("kind", sorted(DEFECTS))
def test_each_defect_is_found_and_named(found, kind):
    defects = found.get(f"defect-{kind}.html", [])
    assert defects, f"{kind}: not found"
    assert {d["kind"] for d in defects} == {kind}, check_pages.report(defects)


def test_text_defect_names_every_pattern(found):
    details = " ".join(d["detail"] for d in found["defect-text.html"])
    for pattern in ("NaN", "np.float64(", "/tmp/"):
        assert f'"{pattern}"' in details, details
