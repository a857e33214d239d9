"""Compare two brainlib output folders (one paper's run before and after a change).

Usage::

    python benchmarks/compare_outputs.py BEFORE AFTER [--skip claims,audit,...] [--tol 0]

Both folders are a notebook's output folder (``tables/``, ``figures/``, ``predictions/``) or a
``brainlib run --out`` folder holding one sub-folder per paper. Reported:

* files present on one side only (tables/*.csv, predictions/*.csv, figures/*.png|pdf by name);
* for each CSV on both sides: a different shape or column set, else every differing cell
  (numbers compared as floats, also inside text cells such as "0.812 [0.70, 0.90]"), with
  the largest absolute difference. `--tol` accepts numeric differences up to that size;
  columns in `--ignore-columns` (default: wall-time ``seconds``) are not compared.

Figures are compared by name only (PNG bytes carry timestamps and font hinting).
Exit status 0 when nothing differs, 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", re.IGNORECASE)
DEFAULT_SKIP = ("claims", "audit", "audit_checks", "settings")
DEFAULT_IGNORE_COLUMNS = ("seconds",)  # wall times differ between any two runs


@dataclass
class FileReport:
    name: str
    problems: list[str] = field(default_factory=list)
    max_abs: float = 0.0

    @property
    def same(self) -> bool:
        return not self.problems


def _numbers(text: str) -> list[float] | None:
    """The numbers inside a text cell with the rest of the text, None if there are none."""
    found = NUMBER.findall(text)
    return [float(x) for x in found] if found else None


def _cell_diff(a: object, b: object) -> float | None:
    """0.0 when equal, the absolute numeric difference, or None when not comparable/equal."""
    a_na, b_na = pd.isna(a), pd.isna(b)
    if a_na and b_na:
        return 0.0
    if a_na != b_na:
        return None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return 0.0
        return abs(float(a) - float(b)) if not (math.isnan(a) or math.isnan(b)) else None
    sa, sb = str(a), str(b)
    if sa == sb:
        return 0.0
    if NUMBER.sub("#", sa) != NUMBER.sub("#", sb):
        return None  # the words differ
    na, nb = _numbers(sa), _numbers(sb)
    if na is None or nb is None or len(na) != len(nb):
        return None
    worst = 0.0
    for x, y in zip(na, nb):
        if math.isnan(x) and math.isnan(y):
            continue
        if math.isnan(x) or math.isnan(y):
            return None
        worst = max(worst, abs(x - y))
    return worst


def compare_csv(a: Path, b: Path, tol: float = 0.0, max_cells: int = 20,
                ignore_columns: tuple[str, ...] = DEFAULT_IGNORE_COLUMNS) -> FileReport:
    rep = FileReport(a.name)
    da, db = pd.read_csv(a), pd.read_csv(b)
    if list(da.columns) != list(db.columns):
        rep.problems.append(f"columns differ: {list(da.columns)} vs {list(db.columns)}")
        return rep
    if da.shape != db.shape:
        rep.problems.append(f"shape differs: {da.shape} vs {db.shape}")
        return rep
    shown = 0
    for col in da.columns:
        if col in ignore_columns:
            continue
        for i, (x, y) in enumerate(zip(da[col], db[col])):
            d = _cell_diff(x, y)
            if d is not None and d <= tol:
                rep.max_abs = max(rep.max_abs, d)
                continue
            rep.max_abs = max(rep.max_abs, d if d is not None else math.inf)
            if shown < max_cells:
                rep.problems.append(f"row {i}, {col!r}: {x!r} vs {y!r}")
            shown += 1
    if shown > max_cells:
        rep.problems.append(f"... {shown - max_cells} more differing cells")
    return rep


def _runs(root: Path) -> dict[str, Path]:
    """{name: output folder}: the folder itself, or one per paper sub-folder."""
    if (root / "tables").is_dir():
        return {"": root}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "tables").is_dir()}


def compare_runs(before: Path, after: Path, skip: tuple[str, ...] = DEFAULT_SKIP,
                 tol: float = 0.0,
                 ignore_columns: tuple[str, ...] = DEFAULT_IGNORE_COLUMNS) -> list[str]:
    """Lines of the report (empty list: the two folders agree)."""
    lines: list[str] = []
    ra, rb = _runs(before), _runs(after)
    for name in sorted(set(ra) ^ set(rb)):
        lines.append(f"{name}: only in {'before' if name in ra else 'after'}")
    for name in sorted(set(ra) & set(rb)):
        a, b = ra[name], rb[name]
        prefix = f"{name}/" if name else ""
        for sub, pattern in (("tables", "*.csv"), ("predictions", "*.csv"),
                             ("figures", "*.png"), ("figures", "*.pdf")):
            fa = {p.name: p for p in (a / sub).glob(pattern) if p.stem not in skip}
            fb = {p.name: p for p in (b / sub).glob(pattern) if p.stem not in skip}
            for f in sorted(set(fa) ^ set(fb)):
                lines.append(f"{prefix}{sub}/{f}: only in {'before' if f in fa else 'after'}")
            if sub == "figures":
                continue
            for f in sorted(set(fa) & set(fb)):
                rep = compare_csv(fa[f], fb[f], tol, ignore_columns=ignore_columns)
                status = "identical" if rep.same and rep.max_abs == 0 else (
                    f"equal within {rep.max_abs:.3g}" if rep.same else "DIFFERS")
                print(f"  {prefix}{sub}/{f}: {status}")
                lines += [f"{prefix}{sub}/{f}: {p}" for p in rep.problems]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--skip", default=",".join(DEFAULT_SKIP),
                    help="comma-separated table stems to ignore (default: %(default)s)")
    ap.add_argument("--ignore-columns", default=",".join(DEFAULT_IGNORE_COLUMNS),
                    help="comma-separated columns not compared (default: %(default)s)")
    ap.add_argument("--tol", type=float, default=0.0, help="accepted absolute difference")
    args = ap.parse_args(argv)
    skip = tuple(s for s in args.skip.split(",") if s)
    ignore = tuple(c for c in args.ignore_columns.split(",") if c)
    lines = compare_runs(args.before, args.after, skip, args.tol, ignore)
    print("\n".join(lines) if lines else "no differences")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
