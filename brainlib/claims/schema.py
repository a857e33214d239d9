"""Schema of the claims registry (`brainlib/claims/<paper>.yaml`) and its loader.

A claims file is plain YAML read with PyYAML's safe loader (after size, depth and alias
checks, see ``_parse``) and validated here in plain Python, so a typo in a file fails loudly
with the file, the entry and the reason. Layout::

    paper: he2024                      # key from brainlib.PAPERS
    citation: "..."                    # full reference
    doi: ...                           # optional
    datasets: {key: description}       # what each claim's `dataset` refers to
    reproducible_offline: {reason_key: why claims with this reason cannot be re-run offline}
    default_not_reproducible: key      # optional: reason applied to every claim (private data)
    claims: [ ... ]                    # see CLAIM_FIELDS
    checks: [ ... ]                    # arithmetic for the audit, see CHECK_FIELDS (check_schema)

Each claim is one number the paper prints, addressed by (source, row, metric) and given a
stable id. Every claim states its ``kind`` (required; see `KINDS`), which decides how a
measurement of it is judged (`brainlib.claims.compare`):

* ``setting``: a hyper-parameter, window, threshold or size the method uses;
* ``data``: a statistic of a data set (counts of slices or scans, class proportions);
* ``result``: a metric of a model the paper trained (or a number derived from such metrics);
* ``comparison``: "A is better than B" (``a``, ``b``: claim ids or row names, and a
  ``direction``; a/b/direction are allowed on comparisons only);
* ``external``: another paper's or a reader study's number (radiologists, other groups'
  models the paper quotes or evaluates from their outputs): quoted, never re-run.

The printed rounding of each value is read from the YAML text itself, so
``0.990`` means +-0.0005 and ``0.99`` means +-0.005; ``decimals`` overrides it (negative
for round numbers such as "750,000").
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainlib import PAPERS
from brainlib.claims.check_schema import CHECK_FIELDS, SEVERITIES, is_number, validate_check  # noqa: F401
from brainlib.claims.yaml_load import ClaimsError, _parse

CLAIMS_DIR = Path(__file__).resolve().parent

#: Units a claim may carry. Percent values are divided by 100 to compare with fractions.
UNITS: dict[str, str] = {
    "fraction": "a proportion in [0, 1] (AUC, F1, precision printed as 0.937)",
    "percent": "a proportion printed in percent (93.7)",
    "count": "a number of things (slices, scans, classes, epochs)",
    "seconds": "a duration",
    "score": "a rating on the paper's own scale (e.g. confidence 0-3)",
    "parameter": "a model parameter value",
    "hu": "Hounsfield units",
    "index": "a position (slice number)",
    "p_value": "a p-value of a statistical test",
    "value": "a dimensionless setting (learning rate, factor)",
    "pixels": "an image size in pixels",
}
#: Units whose printed integers are exact (148 scans, a 224-pixel input, slice 16, WL 40 HU).
EXACT_UNITS = {"count", "pixels", "index", "hu"}
#: Units that are proportions: they are compared on the fraction scale.
PROPORTION_UNITS = {"fraction", "percent"}
#: Kinds of claim (see the module docstring); ``kind`` is required on every claim.
KINDS = ("setting", "data", "result", "comparison", "external")
DIRECTIONS = ("greater", "less")

CLAIM_REQUIRED = ("id", "kind", "source", "row", "metric", "unit", "dataset")
CLAIM_OPTIONAL = ("value", "note", "not_reproducible", "decimals", "a", "b", "direction", "p_value")
HEADER_KEYS = ("paper", "citation", "doi", "datasets", "reproducible_offline",
               "default_not_reproducible", "claims", "checks")
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)+$")


@dataclass(frozen=True)
class Claim:
    """One number a paper reports (or one comparative statement)."""

    id: str
    source: str
    row: str
    metric: str
    unit: str
    dataset: str
    kind: str
    value: float | None = None
    printed: str | None = None
    decimals: int | None = None
    note: str = ""
    not_reproducible: str | None = None
    a: str | None = None
    b: str | None = None
    direction: str | None = None
    p_value: float | None = None

    @property
    def tolerance(self) -> float:
        """Half a unit of the last printed digit, in the claim's own unit.

        Zero when unknown, and for counts printed in full (a count of 148 scans is exact;
        a round "750,000" with ``decimals: -4`` is not).
        """
        return tolerance_for(self.decimals, self.unit)

    @property
    def scale(self) -> float:
        """Factor taking the claim's unit to the comparison scale (percent -> fraction)."""
        return 0.01 if self.unit == "percent" else 1.0

    def interval(self, decimals: int | None = None) -> tuple[float, float]:
        """[low, high] the printed value stands for, on the comparison scale.

        `decimals` overrides the printed precision (an audit reading such as "0.9 is 0.900").
        """
        if self.value is None:
            raise ClaimsError(f"claim {self.id!r} has no numeric value")
        tol = self.tolerance if decimals is None else tolerance_for(decimals, self.unit)
        s = self.scale
        return ((self.value - tol) * s, (self.value + tol) * s)


@dataclass
class PaperClaims:
    """A validated claims file."""

    paper: str
    path: Path
    citation: str
    datasets: dict[str, str]
    reasons: dict[str, str]
    claims: list[Claim]
    checks: list[dict[str, Any]] = field(default_factory=list)
    doi: str | None = None

    @property
    def by_id(self) -> dict[str, Claim]:
        """Claims keyed by their id."""
        return {c.id: c for c in self.claims}


def tolerance_for(decimals: int | None, unit: str) -> float:
    """Half a unit of the last printed digit; counts printed in full are exact."""
    if decimals is None or (unit in EXACT_UNITS and decimals >= 0):
        return 0.0
    return 0.5 * 10.0 ** (-decimals)


def printed_decimals(text: str) -> int | None:
    """Decimals shown in a printed number: '0.990' -> 3, '750000' -> 0, '1e-3' -> None."""
    t = text.strip().lstrip("+-")
    if not re.fullmatch(r"[0-9_]*\.?[0-9_]*", t) or not any(ch.isdigit() for ch in t):
        return None
    return len(t.split(".", 1)[1]) if "." in t else 0


def _comparison_unit(entry: dict, entries: list) -> str:
    """Unit of a comparison: that of its `a` claim when `a` is a claim id, else fraction."""
    for other in entries:
        if isinstance(other, dict) and other.get("id") == entry.get("a") and other.get("unit"):
            return str(other["unit"])
    return "fraction"


def claims_path(paper: str | Path) -> Path:
    """The YAML file of a paper key (or the path itself if a path is given)."""
    p = Path(paper)
    if p.suffix in (".yaml", ".yml"):
        return p
    if str(paper) not in PAPERS:
        raise ClaimsError(f"unknown paper {paper!r}; expected one of {', '.join(PAPERS)}")
    return CLAIMS_DIR / f"{paper}.yaml"


def load_paper(paper: str | Path) -> PaperClaims:
    """Load and validate one claims file; raise ClaimsError naming the file and entry."""
    path = claims_path(paper)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ClaimsError(f"{path}: claims file not found") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ClaimsError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from exc
    data, raw = _parse(str(path), stat.st_mtime_ns, stat.st_size)
    return _validate(copy.deepcopy(data), raw, path)


def _validate(data: Any, raw: dict[int, str], path: Path) -> PaperClaims:
    def fail(where: str, why: str) -> ClaimsError:
        return ClaimsError(f"{path}: {where}: {why}")

    if not isinstance(data, dict):
        raise fail("top level", "must be a mapping with paper, citation, datasets, claims")
    unknown = set(data) - set(HEADER_KEYS)
    if unknown:
        raise fail("top level", f"unknown keys {sorted(unknown)}; allowed {list(HEADER_KEYS)}")
    for key in ("paper", "citation", "datasets", "claims"):
        if key not in data:
            raise fail("top level", f"missing required key {key!r}")
    paper = data["paper"]
    if not isinstance(paper, str) or (path.parent == CLAIMS_DIR and path.stem != paper):
        raise fail("paper", f"must be the file's paper key {path.stem!r}, got {paper!r}")
    datasets = data["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        raise fail("datasets", "must be a non-empty mapping key -> description")
    reasons = data.get("reproducible_offline") or {}
    if not isinstance(reasons, dict):
        raise fail("reproducible_offline", "must be a mapping reason key -> explanation")
    default_reason = data.get("default_not_reproducible")
    if default_reason is not None and default_reason not in reasons:
        raise fail("default_not_reproducible", f"{default_reason!r} is not a key of reproducible_offline")
    if not isinstance(data["claims"], list) or not data["claims"]:
        raise fail("claims", "must be a non-empty list")

    claims: list[Claim] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["claims"]):
        where = f"claims[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, "must be a mapping")
        if "id" in entry:
            where += f" (id {entry['id']!r})"
        extra = set(entry) - set(CLAIM_REQUIRED) - set(CLAIM_OPTIONAL)
        if extra:
            raise fail(where, f"unknown fields {sorted(extra)}")
        kind = entry.get("kind")
        if kind == "value":
            raise fail(where, "kind 'value' is no longer accepted: use 'result' (a metric of a model "
                              "the paper trained), 'data' (a data-set statistic) or 'external' "
                              f"(another paper's or a reader study's number); kinds are {KINDS}")
        for key in CLAIM_REQUIRED:
            if key == "unit" and kind == "comparison":
                continue  # a comparison takes the unit of its `a` side (fraction for row names)
            if key not in entry or entry[key] in (None, ""):
                raise fail(where, f"missing required field {key!r}")
        cid = str(entry["id"])
        if not _ID_RE.match(cid):
            raise fail(where, "id must look like 'source/row/metric' (letters, digits, _ . - and /)")
        if cid in seen:
            raise fail(where, f"duplicate id {cid!r}")
        seen.add(cid)
        if kind not in KINDS:
            raise fail(where, f"kind must be one of {KINDS}, got {kind!r}")
        unit = entry.get("unit") or _comparison_unit(entry, data["claims"])
        if unit not in UNITS:
            raise fail(where, f"unit must be one of {sorted(UNITS)}, got {unit!r}")
        if entry["dataset"] not in datasets:
            raise fail(where, f"dataset {entry['dataset']!r} is not declared under datasets")
        value = entry.get("value")
        if kind != "comparison" and value is None:
            raise fail(where, "missing required field 'value'")
        if value is not None and not is_number(value):
            raise fail(where, f"value must be a finite number, got {value!r}")
        reason = entry.get("not_reproducible", default_reason)
        if reason is not None and reason not in reasons:
            raise fail(where, f"not_reproducible {reason!r} is not a key of reproducible_offline")
        decimals = entry.get("decimals")
        if decimals is not None and not (isinstance(decimals, int) and not isinstance(decimals, bool)):
            raise fail(where, f"decimals must be an integer, got {decimals!r}")
        printed = raw.get(i)
        if decimals is None and printed is not None:
            decimals = printed_decimals(printed)
        a = b = direction = None
        if kind == "comparison":
            for key in ("a", "b", "direction"):
                if entry.get(key) in (None, ""):
                    raise fail(where, f"comparison needs {key!r}")
            a, b, direction = str(entry["a"]), str(entry["b"]), entry["direction"]
            if direction not in DIRECTIONS:
                raise fail(where, f"direction must be one of {DIRECTIONS}, got {direction!r}")
        else:
            for key in ("a", "b", "direction"):
                if key in entry:
                    raise fail(where, f"{key!r} is only allowed on kind: comparison")
        p_value = entry.get("p_value")
        if p_value is not None and not (is_number(p_value) and 0 <= p_value <= 1):
            raise fail(where, f"p_value must be a number in [0, 1], got {p_value!r}")
        claims.append(Claim(
            id=cid, source=str(entry["source"]), row=str(entry["row"]), metric=str(entry["metric"]),
            unit=unit, dataset=str(entry["dataset"]), kind=kind,
            value=None if value is None else float(value), printed=printed, decimals=decimals,
            note=str(entry.get("note", "") or ""), not_reproducible=reason, a=a, b=b,
            direction=direction, p_value=None if p_value is None else float(p_value),
        ))

    ids = {c.id for c in claims}
    for i, c in enumerate(claims):
        if c.kind != "comparison":
            continue
        for side in (c.a, c.b):
            if side not in ids and _ID_RE.match(side or ""):
                raise fail(f"claims[{i}] (id {c.id!r})", f"comparison refers to unknown claim id {side!r}")

    checks = data.get("checks") or []
    if not isinstance(checks, list):
        raise fail("checks", "must be a list")
    by_id = {c.id: c for c in claims}
    for i, check in enumerate(checks):
        validate_check(check, i, by_id, fail)
    return PaperClaims(paper=paper, path=path, citation=str(data["citation"]).strip(),
                       datasets={k: str(v) for k, v in datasets.items()},
                       reasons={k: str(v) for k, v in reasons.items()}, claims=claims,
                       checks=checks, doi=data.get("doi"))
