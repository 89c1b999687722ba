#!/usr/bin/env python3
"""Draw the latency percentiles of every benchmark table in target/bench-results/*.md
as one SVG (log-scale horizontal bars: p50, p95, p99 per row). No dependencies.

usage: scripts/plot_benchmarks.py [RESULTS_DIR] [OUT.svg]
"""

import math
import re
import sys
from pathlib import Path

results = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench-results")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/benchmarks-latency.svg")


def rows_of(table_text):
    lines = [l for l in table_text.splitlines() if l.startswith("|")]
    if len(lines) < 3:
        return []
    header = [c.strip().lower() for c in lines[0].strip("|").split("|")]
    try:
        cols = [header.index(h) for h in ("p50 ms", "p95 ms", "p99 ms")]
    except ValueError:
        return []
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        try:
            values = [float(cells[i]) for i in cols]
        except (ValueError, IndexError):
            continue
        rows.append((cells[0], values))
    return rows


data = []
for path in sorted(results.glob("*.md")):
    for name, values in rows_of(path.read_text()):
        data.append((f"{path.stem}: {name}", values))
if not data:
    sys.exit(f"no benchmark tables with p50/p95/p99 columns in {results}")

label_w, bar_w, row_h, top = 430, 520, 26, 40
lo = min(v for _, vs in data for v in vs if v > 0) / 2
hi = max(v for _, vs in data for v in vs) * 1.5
span = math.log10(hi) - math.log10(lo)


def x(v):
    return label_w + bar_w * (math.log10(max(v, lo)) - math.log10(lo)) / span


colors = {"p99": "#c6dbef", "p95": "#6baed6", "p50": "#08519c"}
height = top + row_h * len(data) + 50
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 30}" height="{height}" '
       f'font-family="sans-serif" font-size="12">',
       '<text x="10" y="20" font-size="14" font-weight="bold">sandgraph latency percentiles '
       '(ms, log scale): p50 dark, p95 mid, p99 light</text>']
for i, (name, (p50, p95, p99)) in enumerate(data):
    y = top + i * row_h
    svg.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{name[:70]}</text>')
    for key, value in (("p99", p99), ("p95", p95), ("p50", p50)):
        svg.append(f'<rect x="{label_w}" y="{y + 3}" width="{x(value) - label_w:.1f}" height="16" '
                   f'fill="{colors[key]}"><title>{name} {key} {value} ms</title></rect>')
    svg.append(f'<text x="{x(p99) + 4:.1f}" y="{y + 15}" fill="#555">{p50:g}/{p95:g}/{p99:g}</text>')
axis_y = top + row_h * len(data) + 10
tick = 10 ** math.floor(math.log10(lo))
while tick <= hi:
    if tick >= lo:
        svg.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{axis_y}" stroke="#ddd"/>')
        svg.append(f'<text x="{x(tick):.1f}" y="{axis_y + 15}" text-anchor="middle">{tick:g}</text>')
    tick *= 10
svg.append("</svg>")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("\n".join(svg) + "\n")
print(f"wrote {out} ({len(data)} rows)")
