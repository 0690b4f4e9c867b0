"""Reducing a long metric series to the points a chart draws, keeping its shape.

Largest-triangle-three-buckets (LTTB): the first and last points stay, each bucket
between keeps the point making the largest triangle with its neighbours, and the
smallest and largest values are always kept, so peaks and dips survive. Non-finite
values split a series into segments, reduced within one budget of points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def downsample(xs: Sequence[float], ys: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    """At most ``n`` of the points, chosen to keep the curve's shape (largest-triangle-three-buckets).

    The first and last points and the smallest and largest ``y`` are always kept.
    Points must be finite and ordered by ``x``; fewer than ``n`` points come back as they are.
    """
    if len(xs) != len(ys):
        raise ValueError(f"downsample: {len(xs)} x values but {len(ys)} y values")
    if n < 3:
        raise ValueError(f"downsample: n must be at least 3, got {n}")
    total = len(xs)
    if total <= n:
        return list(xs), list(ys)
    ys = ys if isinstance(ys, list) else list(ys)
    keep = _lttb_indices(xs, ys, n)
    chosen = set(keep)
    extremes = (ys.index(min(ys)), ys.index(max(ys)))
    for extreme in extremes:
        if extreme not in chosen:
            # replace the nearest chosen inner point that is not itself an extreme
            candidates = [i for i in keep[1:-1] if i not in extremes]
            nearest = min(candidates, key=lambda i: abs(i - extreme))
            chosen.discard(nearest)
            chosen.add(extreme)
            keep = sorted(chosen)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def _lttb_indices(xs: Sequence[float], ys: Sequence[float], n: int) -> list[int]:
    total = len(xs)
    width = (total - 2) / (n - 2)
    keep = [0]
    a = 0
    for b in range(n - 2):
        lo, hi = int(b * width) + 1, int((b + 1) * width) + 1
        nlo, nhi = hi, min(int((b + 2) * width) + 1, total)
        if b == n - 3:  # the last bucket's neighbour is the final point
            nlo, nhi = total - 1, total
        cnt = nhi - nlo
        cx, cy = sum(xs[nlo:nhi]) / cnt, sum(ys[nlo:nhi]) / cnt
        ax, ay = xs[a], ys[a]
        # twice the triangle's area is |p*x + q*y + r|, linear in the candidate (x, y): the
        # largest area is at the largest or the smallest p*x + q*y
        p, q = cy - ay, ax - cx
        r = -q * ay - p * ax
        forms = [p * x + q * y for x, y in zip(xs[lo:hi], ys[lo:hi])]
        hi_form, lo_form = max(forms), min(forms)
        a = lo + forms.index(hi_form if abs(hi_form + r) >= abs(lo_form + r) else lo_form)
        keep.append(a)
    keep.append(total - 1)
    return keep


def finite_segments(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[list[float], list[float]]]:
    """The runs of consecutive points where both coordinates are finite, ordered by x."""
    if len(xs) != len(ys):
        raise ValueError(f"chart series: {len(xs)} x values but {len(ys)} y values")
    xs, ys = list(xs), list(ys)
    if xs != sorted(xs):
        order = sorted(range(len(xs)), key=xs.__getitem__)
        xs, ys = [xs[i] for i in order], [ys[i] for i in order]
    try:
        if math.isfinite(sum(xs)) and math.isfinite(sum(ys)):
            return [(xs, ys)] if xs else []
    except TypeError:
        raise ValueError("chart series: values must be numbers") from None
    segments, cur_x, cur_y = [], [], []
    for x, y in zip(xs, ys):
        if math.isfinite(x) and math.isfinite(y):
            cur_x.append(x)
            cur_y.append(y)
        elif cur_x:
            segments.append((cur_x, cur_y))
            cur_x, cur_y = [], []
    if cur_x:
        segments.append((cur_x, cur_y))
    return segments


def reduce_segments(segments: list[tuple[list[float], list[float]]], budget: int):
    """The segments within about ``budget`` points in all, each reduced in proportion to its length."""
    total = sum(len(sx) for sx, _ in segments)
    if total <= budget:
        return segments
    return [downsample(sx, sy, max(3, budget * len(sx) // total)) if len(sx) > 3 else (sx, sy) for sx, sy in segments]
