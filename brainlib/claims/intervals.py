"""Interval arithmetic and explanation rules of the claims audit (`brainlib.claims.audit`).

A printed value stands for the interval its rounding allows; a derived quantity is evaluated at
every corner of its inputs' intervals. The rounding and macro-averaging rules decide whether an
inconsistency is explainable (their reasoning is in `brainlib.claims.audit`'s docstring).
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np


def corners(fn: Callable[[dict[str, float]], float],
             intervals: dict[str, tuple[float, float]]) -> tuple[float, float, float]:
    """(value at the printed values, min, max) of fn over the corners of the input box."""
    names = list(intervals)
    mid = {n: (lo + hi) / 2 for n, (lo, hi) in intervals.items()}
    centre = fn(mid)
    values = [centre]
    varying = [n for n in names if intervals[n][0] != intervals[n][1]]
    if len(varying) > 14:  # 16k corners: fall back to the printed values plus one-at-a-time
        for n in varying:
            for end in intervals[n]:
                values.append(fn({**mid, n: end}))
    else:
        for combo in itertools.product(*(intervals[n] for n in varying)):
            values.append(fn({**mid, **dict(zip(varying, combo))}))
    return centre, min(values), max(values)


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.10g}"


def interval_text(lo: float, hi: float) -> str:
    return f"[{fmt(lo)}, {fmt(hi)}]"


def rounding_rule(stated_iv: tuple[float, float],
                   computed_iv: tuple[float, float]) -> tuple[str, str]:
    """('rounding', why) when the intervals' gap is within one unit of the stated last digit."""
    if any(math.isnan(x) for x in (*stated_iv, *computed_iv)):
        return "", ""
    gap = max(0.0, computed_iv[0] - stated_iv[1], stated_iv[0] - computed_iv[1])
    digit = stated_iv[1] - stated_iv[0]  # one unit of the last printed digit (2 x half-width)
    if digit > 0 and gap <= digit + 1e-12:
        return "rounding", (f"gap {fmt(gap)} between the intervals <= one unit of the last printed "
                            f"digit ({fmt(digit)})")
    return "", f"gap {fmt(gap)} between the intervals > one unit of the last printed digit ({fmt(digit)})"


def macro_rule(f1_iv: tuple[float, float], p_iv: tuple[float, float], r_iv: tuple[float, float],
                scale: float) -> tuple[bool, str]:
    """Can a macro average of per-class F1 be the printed F1? (bounds in the module docstring).

    All intervals are fractions; `scale` takes them back to the F1 claim's unit for the text.
    """
    def h(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    upper = h(p_iv[1], r_iv[1])
    lower = max(0.0, p_iv[0] + r_iv[0] - 1.0)
    inside = f1_iv[1] >= lower - 1e-12 and f1_iv[0] <= upper + 1e-12
    bounds = f"macro F1 in [P + R - 1, 2PR/(P+R)] = {interval_text(lower / scale, upper / scale)}"
    if not inside:
        side = "above 2PR/(P+R): no average of per-class F1 reaches it" if f1_iv[0] > upper \
            else "below P + R - 1"
        return False, f"{bounds}; the stated F1 is {side}"
    P, R = sum(p_iv) / 2, sum(r_iv) / 2
    gap = max(0.0, h(P, R) - sum(f1_iv) / 2)
    spread = math.sqrt(4 * (P + R) / 2 * gap + (P - R) ** 2)
    return True, f"{bounds} holds the stated F1; needs an RMS per-class |P - R| of about {spread:.2f}"


def cohen_kappa(m: np.ndarray) -> float:
    """Cohen's kappa of a confusion matrix (rows true, columns predicted)."""
    total = m.sum()
    observed = np.trace(m) / total
    expected = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / total ** 2
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")
