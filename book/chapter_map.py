"""Draw the preface's chapter map, ``book/chapter_map.svg``: which chapter needs which.

    .venv/bin/python book/chapter_map.py           # (re)write book/chapter_map.svg
    .venv/bin/python book/chapter_map.py --check   # exit 1 when the file is not what this draws

Plain SVG written by hand (no plotting library, no fonts to embed), so the figure is crisp at any
width and the file is small and diffable. ``NEEDS`` is the one place the dependencies live; the
preface's caption says the same in words, and tests/test_course.py checks that the committed SVG
is this script's output.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

OUT = Path(__file__).resolve().parent / "chapter_map.svg"

#: chapter number -> (short title, kind)
CHAPTERS = {
    1: ("The task, the data and honest evaluation", "foundation"),
    2: ("MARN", "weak"),
    3: ("WSRA", "weak"),
    4: ("VLANet", "weak"),
    5: ("FSAN", "weak"),
    6: ("FIAN, fully supervised", "full"),
    7: ("The five side by side", "comparison"),
}

#: chapter -> the chapters it needs. Chapter 1 sets up the task, the data, the metrics and the
#: controls every later chapter uses; the method chapters need nothing from each other; Chapter 7
#: reads the five methods' checkpoints and results.
NEEDS = {1: [], 2: [1], 3: [1], 4: [1], 5: [1], 6: [1], 7: [2, 3, 4, 5, 6]}

WIDTH, ROW, TOP = 680, 44, 34
COLS = {"foundation": (8, 200), "weak": (262, 186), "full": (262, 186), "comparison": (490, 182)}
FILL = {"foundation": "#e8f0fb", "weak": "#eef7ee", "full": "#fbf1e6", "comparison": "#f1ecf8"}
STROKE = {"foundation": "#3b6db3", "weak": "#3d8b40", "full": "#b87324", "comparison": "#7250a8"}
BOX_H = 32


def _layout() -> dict[int, tuple[float, float, float, float]]:
    """Chapter -> (x, y, w, h): methods stacked in the middle column, the others centred on them."""
    middle = [c for c, (_, kind) in CHAPTERS.items() if kind in ("weak", "full")]
    boxes = {}
    for i, c in enumerate(middle):
        x, w = COLS[CHAPTERS[c][1]]
        boxes[c] = (x, TOP + i * ROW + (10 if CHAPTERS[c][1] == "full" else 0), w, BOX_H)
    centre = (boxes[middle[0]][1] + boxes[middle[-1]][1] + BOX_H) / 2
    for c, (_, kind) in CHAPTERS.items():
        if c not in boxes:
            x, w = COLS[kind]
            boxes[c] = (x, centre - BOX_H / 2 - (8 if kind == "foundation" else 0),
                        w, BOX_H + (16 if kind == "foundation" else 0))
    return boxes


def _label(c: int, box) -> list[str]:
    x, y, w, h = box
    title, kind = CHAPTERS[c]
    words, lines, line = title.split(), [], ""
    for word in words:  # wrap to the box (about 7 px per character at 13 px)
        if line and len(line) + 1 + len(word) > (w - 40) / 6.4:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    out = [f'<text x="{x + 12}" y="{y + h / 2 + 5:.1f}" class="num" fill="{STROKE[kind]}">{c}</text>']
    first = y + h / 2 + 5 - 8 * (len(lines) - 1)
    for i, text in enumerate(lines):
        out.append(f'<text x="{x + 32}" y="{first + 16 * i:.1f}">{escape(text)}</text>')
    return out


def draw() -> str:
    boxes = _layout()
    height = max(y + h for _, y, _, h in boxes.values()) + 40
    weak = [boxes[c] for c, (_, k) in CHAPTERS.items() if k == "weak"]
    gx, gy = weak[0][0] - 8, weak[0][1] - 22
    gw, gh = weak[0][2] + 16, weak[-1][1] + BOX_H + 8 - gy
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-labelledby="title desc">',
        "<title id=\"title\">Which chapter needs which</title>",
        "<desc id=\"desc\">Chapter 1 comes first; Chapters 2 to 6 each need only Chapter 1 and can be "
        "read in any order; Chapter 7 needs Chapters 2 to 6.</desc>",
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" "
        "markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" "
        "fill=\"#555\"/></marker></defs>",
        "<style>text { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; "
        "font-size: 13px; fill: #222; } .num { font-weight: bold; font-size: 15px; } "
        ".note { font-size: 12px; fill: #555; }</style>",
        f'<rect x="{gx}" y="{gy}" width="{gw}" height="{gh}" rx="10" fill="none" '
        f'stroke="{STROKE["weak"]}" stroke-dasharray="5 4"/>',
        f'<text x="{gx + 10}" y="{gy + 15}" class="note">weak supervision, any order</text>',
    ]
    for c, needs in NEEDS.items():  # arrows first, boxes on top
        x2, y2, _, h2 = boxes[c]
        for n in needs:
            x1, y1, w1, h1 = boxes[n]
            sx, sy, ex, ey = x1 + w1, y1 + h1 / 2, x2 - 2, y2 + h2 / 2
            mx = (sx + ex) / 2
            parts.append(f'<path d="M {sx:.1f} {sy:.1f} C {mx:.1f} {sy:.1f}, {mx:.1f} {ey:.1f}, '
                         f'{ex:.1f} {ey:.1f}" fill="none" stroke="#555" stroke-width="1.3" '
                         'marker-end="url(#arrow)"/>')
    for c, box in boxes.items():
        x, y, w, h = box
        kind = CHAPTERS[c][1]
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{w}" height="{h}" rx="6" '
                     f'fill="{FILL[kind]}" stroke="{STROKE[kind]}" stroke-width="1.5"/>')
        parts += _label(c, box)
    parts.append(f'<text x="8" y="{height - 12:.0f}" class="note">Reference pages for every chapter: '
                 "How to run, Notation, Glossary, Evaluation protocols, Bibliography.</text>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed file is stale")
    args = parser.parse_args(argv)
    svg = draw()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != svg:
            print(f"{OUT} is not current: run python book/chapter_map.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(svg)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
