"""SVG charts for the web UI: metric curves, scatter plots and parallel coordinates.

Pure Python, no dependencies: each function returns one ``<svg>`` element as a
string, ready to inline in a page. Every piece of text in the markup (titles,
series, axis and category labels) is XML-escaped, because metric, param and run
names are chosen by whoever logs them. Long series are reduced with
largest-triangle-three-buckets (``evtrack.server.ui.downsample``) so a million-point history
draws as ~1,000 points that keep its shape.
"""

from __future__ import annotations

import itertools
import math
import re

from evtrack.server.ui.downsample import finite_segments, reduce_segments

MAX_POINTS_PER_SERIES = 1000
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DASHES = ("", "6 3", "2 2", "8 3 2 3")  # cycled after the palette runs out
RAMP = (
    (0.267, 0.005, 0.329),
    (0.231, 0.322, 0.545),
    (0.129, 0.569, 0.549),
    (0.369, 0.788, 0.384),
    (0.992, 0.906, 0.145),
)  # dark purple → teal → yellow
MISSING_COLOR = "#b0b0b0"
MAX_CATEGORY_LABELS = 20  # labels written along one categorical axis
FONT = 'font-family="system-ui, sans-serif" font-size="11"'

_gradient_ids = itertools.count(1)  # ids must be unique within a page holding several charts
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# -- text and numbers ----------------------------------------------------------------------


def escape(text: object) -> str:
    """``text`` safe inside XML/HTML text and quoted attributes (invalid characters become U+FFFD)."""
    s = _NOT_XML_CHAR.sub("\ufffd", str(text))
    return (
        s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;")
    )


def _short(text: object, limit: int) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _num(v: float) -> str:
    """A value for a tooltip: short but exact enough to tell points apart."""
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return f"{v:.6g}"


def _tick_labels(ticks: list[float]) -> list[str]:
    """Labels for an axis's ticks, with one unit suffix (k, M, G, T) shared by the axis."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else (abs(ticks[0]) or 1.0)
    big = max(abs(t) for t in ticks)
    unit, suffix = 1.0, ""
    for threshold, u, sfx in ((1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if big >= threshold:
            unit, suffix = u, sfx
            break
    if big >= 1e15 or step / unit < 1e-4:
        return [f"{t:.3g}" for t in ticks]
    decimals = max(0, -math.floor(math.log10(step / unit) + 1e-9))
    return ["0" if t == 0 else f"{t / unit:.{decimals}f}{suffix}" for t in ticks]


def _nice(x: float, round_it: bool) -> float:
    exp = math.floor(math.log10(x))
    f = x / 10**exp
    if round_it:
        nf = 1 if f < 1.5 else 2 if f < 3 else 5 if f < 7 else 10
    else:
        nf = 1 if f <= 1 else 2 if f <= 2 else 5 if f <= 5 else 10
    return nf * 10**exp


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> tuple[float, float, list[float]]:
    """An axis domain covering ``lo..hi`` with round bounds, and its tick values (whole when ``integer``)."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = 1.0 if integer else abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice(_nice(hi - lo, False) / max(1, count - 1), True)
    if integer:
        step = max(step, 1.0)
    start, end = math.floor(lo / step) * step, math.ceil(hi / step) * step
    digits = max(0, -math.floor(math.log10(step))) + 2
    ticks = [round(start + i * step, digits) + 0.0 for i in range(round((end - start) / step) + 1)]
    return start, end, ticks


# -- shared pieces -------------------------------------------------------------------------


def _open_svg(css_class: str, title: str, width: float, height: float) -> list[str]:
    root = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" role="img" '
        f'viewBox="0 0 {width:g} {height:g}" aria-label="{escape(title)}" {FONT}>'
    )
    heading = (
        f'<text class="chart-title" x="{width / 2:g}" y="16" text-anchor="middle" '
        f'font-size="13" font-weight="600">{escape(_short(title, 90))}</text>'
    )
    return [root, heading]


class _Scale:
    """Maps a data interval onto a pixel interval (``flip`` for y, which grows downwards)."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float) -> None:
        self.lo, self.span, self.p0, self.p1 = lo, (hi - lo) or 1.0, p0, p1

    def __call__(self, v: float) -> float:
        return self.p0 + (v - self.lo) / self.span * (self.p1 - self.p0)


def _axes(
    out: list[str], xs: _Scale, ys: _Scale, xticks: list[float], yticks: list[float], x_label: str, y_label: str
) -> None:
    left, right, top, bottom = xs.p0, xs.p1, ys.p1, ys.p0
    out.append('<g class="axes" stroke="#ddd" stroke-width="1">')
    out.extend(f'<line x1="{left:g}" x2="{right:g}" y1="{ys(t):.1f}" y2="{ys(t):.1f}"/>' for t in yticks)
    out.append(
        f'<line x1="{left:g}" x2="{left:g}" y1="{top:g}" y2="{bottom:g}" stroke="#888"/>'
        f'<line x1="{left:g}" x2="{right:g}" y1="{bottom:g}" y2="{bottom:g}" stroke="#888"/></g>'
    )
    out.append('<g class="ticks" fill="#555">')
    out.extend(
        f'<text x="{xs(t):.1f}" y="{bottom + 14:g}" text-anchor="middle">{label}</text>'
        for t, label in zip(xticks, _tick_labels(xticks))
    )
    out.extend(
        f'<text x="{left - 5:g}" y="{ys(t) + 4:.1f}" text-anchor="end">{label}</text>'
        for t, label in zip(yticks, _tick_labels(yticks))
    )
    out.append("</g>")
    if x_label:
        out.append(
            f'<text class="x-label" x="{(left + right) / 2:g}" y="{bottom + 30:g}" '
            f'text-anchor="middle">{escape(_short(x_label, 80))}</text>'
        )
    if y_label:
        cy = (top + bottom) / 2
        out.append(
            f'<text class="y-label" x="12" y="{cy:g}" text-anchor="middle" '
            f'transform="rotate(-90 12 {cy:g})">{escape(_short(y_label, 50))}</text>'
        )


def _empty(out: list[str], width: float, height: float) -> str:
    out.append(
        f'<text class="no-data" x="{width / 2:g}" y="{height / 2:g}" text-anchor="middle" '
        'fill="#888">No data</text></svg>'
    )
    return "".join(out)


# -- line chart ----------------------------------------------------------------------------


def line_chart(
    series: list[tuple[str, list[float], list[float]]],
    *,
    title: str,
    x_label: str = "step",
    y_label: str = "",
    width: int = 640,
    height: int = 320,
    css_class: str = "metric-chart",
) -> str:
    """Curves of ``(label, xs, ys)`` series overlaid on shared axes, with a legend.

    Non-finite points leave a gap; each series keeps at most ~1,000 points.
    """
    prepared = [(label, reduce_segments(finite_segments(sx, sy), MAX_POINTS_PER_SERIES)) for label, sx, sy in series]
    legend_rows = _legend_layout([label for label, _ in prepared], width - 70)
    total_height = height + 18 * len({row for row, _ in legend_rows})
    out = _open_svg(css_class, title, width, total_height)
    points = [seg for _, segs in prepared for seg in segs]
    if not points:
        return _empty(out, width, total_height)
    x_min, x_max = min(min(sx) for sx, _ in points), max(max(sx) for sx, _ in points)
    x_lo, x_hi, xticks = nice_ticks(x_min, x_max, 6, integer=isinstance(x_min, int) and isinstance(x_max, int))
    y_lo, y_hi, yticks = nice_ticks(min(min(sy) for _, sy in points), max(max(sy) for _, sy in points), 5)
    xs, ys = _Scale(x_lo, x_hi, 60, width - 24), _Scale(y_lo, y_hi, height - 44, 28)
    _axes(out, xs, ys, xticks, yticks, x_label, y_label)
    for i, (label, segments) in enumerate(prepared):
        out.append(_series_markup(i, label, segments, xs, ys))
    for i, ((row, x), (label, _)) in enumerate(zip(legend_rows, prepared)):
        y = height + 18 * row - 4
        out.append(
            f'<g class="legend-item"><title>{escape(label)}</title>'
            f'<line x1="{x:g}" x2="{x + 16:g}" y1="{y:g}" y2="{y:g}" stroke-width="3" '
            f'{_stroke(i)}/><text x="{x + 20:g}" y="{y + 4:g}">{escape(_short(label, 40))}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _stroke(i: int) -> str:
    dash = DASHES[(i // len(PALETTE)) % len(DASHES)]
    return f'stroke="{PALETTE[i % len(PALETTE)]}"' + (f' stroke-dasharray="{dash}"' if dash else "")


def _series_markup(i: int, label: str, segments, xs: _Scale, ys: _Scale) -> str:
    last_x, last_y = (segments[-1][0][-1], segments[-1][1][-1]) if segments else (None, None)
    tip = escape(label) + (f" (last {_num(last_y)} at {_num(last_x)})" if segments else " (no finite values)")
    parts, dots = [], []
    for sx, sy in segments:
        if len(sx) == 1:
            dots.append(
                f'<circle cx="{xs(sx[0]):.1f}" cy="{ys(sy[0]):.1f}" r="2.5" '
                f'fill="{PALETTE[i % len(PALETTE)]}" stroke="none"/>'
            )
            continue
        coords = " L".join(f"{xs(x):.1f} {ys(y):.1f}" for x, y in zip(sx, sy))
        parts.append("M" + coords)
    path = f'<path d="{" ".join(parts)}"/>' if parts else ""
    return (
        f'<g class="series" data-series="{i}" fill="none" stroke-width="1.5" stroke-linejoin="round" '
        f"{_stroke(i)}><title>{tip}</title>{path}{''.join(dots)}</g>"
    )


def _legend_layout(labels: list[str], usable: float) -> list[tuple[int, float]]:
    """(row, x) of each legend entry, wrapping to new rows as the width fills up."""
    placed, row, x = [], 0, 60.0
    for label in labels:
        w = 28 + 6.2 * len(_short(label, 40))
        if x + w > 60 + usable and x > 60:
            row, x = row + 1, 60.0
        placed.append((row, x))
        x += w
    return placed


# -- scatter -------------------------------------------------------------------------------


def scatter_chart(
    points: list[tuple[str, float, float]],
    *,
    x_label: str,
    y_label: str,
    title: str,
    css_class: str = "scatter-chart",
    width: int = 640,
    height: int = 360,
) -> str:
    """A dot per ``(label, x, y)`` with a tooltip; points with a non-finite coordinate are left out."""
    out = _open_svg(css_class, title, width, height)
    kept = [(lbl, x, y) for lbl, x, y in points if _is_finite_number(x) and _is_finite_number(y)]
    if not kept:
        return _empty(out, width, height)
    x_lo, x_hi, xticks = nice_ticks(*_padded([x for _, x, _ in kept]), 6)
    y_lo, y_hi, yticks = nice_ticks(*_padded([y for _, _, y in kept]), 5)
    xs, ys = _Scale(x_lo, x_hi, 60, width - 24), _Scale(y_lo, y_hi, height - 44, 28)
    _axes(out, xs, ys, xticks, yticks, x_label, y_label)
    out.append(f'<g class="points" fill="{PALETTE[0]}" fill-opacity="0.75" stroke="#fff">')
    for lbl, x, y in kept:
        tip = f"{escape(lbl)}: {escape(x_label)}={_num(x)}, {escape(y_label)}={_num(y)}"
        out.append(f'<circle cx="{xs(x):.1f}" cy="{ys(y):.1f}" r="4"><title>{tip}</title></circle>')
    out.append("</g></svg>")
    return "".join(out)


def _padded(values: list[float]) -> tuple[float, float]:
    """min..max widened by 5% each side, so dots on the edge are not cut in half."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _is_finite_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# -- parallel coordinates ------------------------------------------------------------------


class _Axis:
    """One vertical axis: numeric (scaled min..max) or categorical (values evenly spaced)."""

    def __init__(self, name: str, values: list[object]) -> None:
        self.name = name
        present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        self.numeric = all(_is_finite_number(v) for v in present)
        self.present = len(present)
        if self.numeric:
            self.lo = min(present, default=0.0)
            self.hi = max(present, default=0.0)
            self.categories: list[str] = []
        else:
            self.categories = sorted({str(v) for v in present})
        self._rank = {c: k for k, c in enumerate(self.categories)}

    def position(self, v: object) -> float | None:
        """Where ``v`` sits on the axis, 0 (bottom) to 1 (top); None when missing."""
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if self.numeric:
            return 0.5 if self.hi == self.lo else (v - self.lo) / (self.hi - self.lo)
        n = len(self.categories)
        return 0.5 if n == 1 else self._rank[str(v)] / (n - 1)

    def labels(self) -> list[tuple[float, str]]:
        if self.numeric:
            if self.hi == self.lo:
                return [(0.5, _num(self.lo))]
            return [(0.0, _num(self.lo)), (0.5, _num((self.lo + self.hi) / 2)), (1.0, _num(self.hi))]
        n = len(self.categories)
        every = max(1, math.ceil(n / MAX_CATEGORY_LABELS))  # the rest stay readable in the tooltips
        return [
            (0.5 if n == 1 else k / (n - 1), c) for k, c in enumerate(self.categories) if k % every == 0 or k == n - 1
        ]


def _ramp(t: float) -> str:
    t = min(1.0, max(0.0, t)) * (len(RAMP) - 1)
    k = min(int(t), len(RAMP) - 2)
    f = t - k
    rgb = [a + (b - a) * f for a, b in zip(RAMP[k], RAMP[k + 1])]
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def parallel_coordinates(
    rows: list[dict[str, float | str | None]],
    axes: list[str],
    *,
    color_by: str,
    title: str,
    css_class: str = "parallel-coordinates",
    width: int | None = None,
    height: int = 360,
) -> str:
    """A vertical axis per name and a line per row across them, coloured by ``color_by``.

    Numeric axes run min..max, string-valued ones are categorical; a missing value
    breaks the row's line. A row's optional ``"label"`` key names it in tooltips.
    """
    width = width or max(640, 130 * len(axes) + 60)
    out = _open_svg(css_class, title, width, height)
    if not rows or not axes:
        return _empty(out, width, height)
    axis_objs = [_Axis(name, [row.get(name) for row in rows]) for name in axes]
    color_axis = _Axis(color_by, [row.get(color_by) for row in rows])
    top, bottom = 46, height - 52
    gap = (width - 120) / max(1, len(axes) - 1)
    ax_x = [60 + gap * k if len(axes) > 1 else width / 2 for k in range(len(axes))]
    out.append('<g class="lines" fill="none" stroke-width="1.5" stroke-opacity="0.85">')
    for row in rows:
        out.append(_row_markup(row, axis_objs, ax_x, top, bottom, color_axis, axes, color_by))
    out.append("</g>")
    for x, axis in zip(ax_x, axis_objs):
        out.append(_axis_markup(x, axis, top, bottom))
    out.append(_ramp_legend(color_axis, width, height))
    out.append("</svg>")
    return "".join(out)


def _row_markup(
    row,
    axis_objs: list[_Axis],
    ax_x: list[float],
    top: float,
    bottom: float,
    color_axis: _Axis,
    axes: list[str],
    color_by: str,
) -> str:
    t = color_axis.position(row.get(color_by))
    if t is None:
        color = MISSING_COLOR
    elif color_axis.numeric:
        color = _ramp(t)
    else:
        color = PALETTE[color_axis._rank[str(row.get(color_by))] % len(PALETTE)]
    parts, pen_down, dots = [], False, []
    for x, axis in zip(ax_x, axis_objs):
        pos = axis.position(row.get(axis.name))
        if pos is None:
            pen_down = False
            continue
        y = bottom - pos * (bottom - top)
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.1f}")
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}" stroke="none"/>')
        pen_down = True
    names = list(dict.fromkeys([*axes, color_by]))
    tip = " ".join(f"{escape(n)}={escape(_fmt_value(row.get(n)))}" for n in names)
    if row.get("label") is not None:
        tip = f"{escape(row['label'])}: {tip}"
    return f'<g class="row" stroke="{color}"><title>{tip}</title><path d="{" ".join(parts)}"/>{"".join(dots)}</g>'


def _fmt_value(v: object) -> str:
    if v is None:
        return "—"
    return _num(v) if _is_finite_number(v) else str(v)


def _axis_markup(x: float, axis: _Axis, top: float, bottom: float) -> str:
    head = (
        f'<g class="pc-axis"><title>{escape(axis.name)}</title>'
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:g}" y2="{bottom:g}" stroke="#666"/>'
        f'<text x="{x:.1f}" y="{top - 10:g}" text-anchor="middle" font-weight="600">'
        f"{escape(_short(axis.name, 22))}</text>"
    )
    out = [head]
    for pos, label in axis.labels():
        y = bottom - pos * (bottom - top)
        out.append(
            f'<text x="{x + 4:.1f}" y="{y + 4:.1f}" fill="#444" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{escape(_short(label, 18))}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _ramp_legend(axis: _Axis, width: float, height: float) -> str:
    y = height - 26
    name = escape(_short(axis.name, 40))
    if not axis.numeric or not axis.present:
        return f'<text class="color-legend" x="60" y="{y + 10:g}">colour: {name}</text>'
    stops = "".join(
        f'<stop offset="{k / (len(RAMP) - 1):g}" stop-color="{_ramp(k / (len(RAMP) - 1))}"/>' for k in range(len(RAMP))
    )
    x0, gid = width - 260, f"pc-ramp-{next(_gradient_ids)}"
    return (
        f'<g class="color-legend"><defs><linearGradient id="{gid}">{stops}</linearGradient></defs>'
        f'<text x="{x0 - 6:g}" y="{y + 10:g}" text-anchor="end">{name}</text>'
        f'<text x="{x0:g}" y="{y + 10:g}" text-anchor="start">{_num(axis.lo)}</text>'
        f'<rect x="{x0 + 60:g}" y="{y:g}" width="120" height="12" fill="url(#{gid})"/>'
        f'<text x="{x0 + 184:g}" y="{y + 10:g}">{_num(axis.hi)}</text></g>'
    )
