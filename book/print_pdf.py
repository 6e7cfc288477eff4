"""Print the one-page HTML book (Sphinx's ``singlehtml`` build) to a PDF with headless Chromium.

    .venv/bin/python book/print_pdf.py _build/singlehtml _build/pdf/wsg-book.pdf

``make pdf`` runs it. The page is served from 127.0.0.1, as book/check_pages.py serves the site,
and printed by Chromium's ``--print-to-pdf`` with a print style sheet added on the fly (never to
the files): the theme's sidebars, header buttons and footer links are dropped, solutions and
folded cells are opened (a PDF cannot unfold them), and cells are kept from splitting across
pages where they fit. No LaTeX is involved (book/preface.md, "Editions and the PDF", says why).
MathJax comes from its CDN: without network access the equations print as their TeX source, and
the script says so.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_pages import Server, chromium, find_browser  # noqa: E402

PRINT_CSS = """<style media="print">
  .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .header-article, .bd-header-article,
  .prev-next-area, .bd-footer-content, .bd-footer-article, .skip-link, #pst-back-to-top,
  .headerlink, .copybtn, .toggle-button, .search-button-field { display: none !important; }
  .bd-main .bd-content .bd-article-container { max-width: 100% !important; }
  .bd-page-width { max-width: 100% !important; }
  details { display: block; } details > * { display: block !important; }
  .toggle-hidden { display: block !important; visibility: visible !important; }
  div.cell_input, div.cell_output, figure, table { break-inside: avoid; }
  h1, h2, h3 { break-after: avoid; }
  section > h1 { break-before: page; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>"""


def root_page(site: Path) -> str:
    """The book's one page: the file the index redirects to (``book/cover.html``)."""
    index = (site / "index.html").read_text(errors="replace") if (site / "index.html").is_file() else ""
    import re

    m = re.search(r'url=([^"\']+)"', index)
    if m and (site / m.group(1)).is_file():
        return m.group(1)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if not p.relative_to(site).parts[0].startswith("_") and p.name not in ("index.html", "search.html", "genindex.html"))
    if not pages:
        raise SystemExit(f"print_pdf: no page in {site}")
    return pages[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the singlehtml build, e.g. _build/singlehtml")
    parser.add_argument("pdf", type=Path, help="the PDF to write")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("print_pdf: headless Chromium not found (`make browser` installs Debian's chromium)", file=sys.stderr)
        return 1
    page = root_page(args.site)
    args.pdf.parent.mkdir(parents=True, exist_ok=True)
    args.pdf.unlink(missing_ok=True)
    start = time.time()
    with Server(args.site, PRINT_CSS) as server:
        result = chromium(browser, f"{server.url}/{page}", f"--print-to-pdf={args.pdf.resolve()}",
                          "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
                          timeout=600)
    if not args.pdf.is_file() or args.pdf.stat().st_size < 10_000:
        print(f"print_pdf: Chromium wrote no PDF\n{result.stderr[-2000:]}", file=sys.stderr)
        return 1
    html = (args.site / page).read_text(errors="replace")
    pages = args.pdf.read_bytes().count(b"/Type /Page") - args.pdf.read_bytes().count(b"/Type /Pages")
    print(f"print_pdf: wrote {args.pdf} ({args.pdf.stat().st_size / 2**20:.1f} MB, {pages} pages, "
          f"{time.time() - start:.0f} s) from {page}")
    if "mathjax" in html.lower():
        print("print_pdf: the equations are typeset by MathJax from its CDN; printed offline they show "
              "as TeX source", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
