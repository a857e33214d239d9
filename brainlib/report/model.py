"""What the report shows, as plain data: one :class:`PaperSection` per paper in :class:`ReportData`.

Built by :mod:`brainlib.report.collect` from an outputs folder and laid out by
:mod:`brainlib.report.markdown` and :mod:`brainlib.report.html`. Strings are kept raw here;
each renderer escapes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from brainlib.report.tables import format_cell

PAPER_TITLES: dict[str, str] = {
    "he2024": "He et al. 2024 (Heliyon): window-setting optimisation, multiscale attention, CAM",
    "wang_drct2": "Wang et al.: DrCT1/DrCT2 key-slice sequence model",
    "yin2024": "Yin et al. 2024 (Sci Rep): Mask R-CNN + TCCBAM + deformable ResNet-10",
    "lin2021": "Lin et al. 2021 (Med Phys): Dscint, bone scintigraphy",
    "pandiyaraju2024": "Pandiyaraju et al. 2024 (arXiv 2407.02844): LinkNet-InceptionResNet + attention",
}
# The DATA/<sub-folder>s a paper reads with --data-root (README.md, "Real data").
PAPER_DATA: dict[str, tuple[str, ...]] = {
    "he2024": ("rsna",), "wang_drct2": ("rsna", "cq500"), "yin2024": ("cq500", "deeplesion"),
    "lin2021": ("scintigraphy",), "pandiyaraju2024": ("busi",),
}
SETTING_STATUSES: tuple[str, ...] = ("as in paper", "changed")
EVIDENCE_STATUSES: tuple[str, ...] = (
    "consistent", "differs", "inconclusive", "supported", "contradicted",  # real data only
    "phantom run", "quoted, not re-run", "not reproducible offline", "not run")
CLAIM_STATUSES: tuple[str, ...] = SETTING_STATUSES + EVIDENCE_STATUSES  # report order
AUDIT_LEAD = 5  # largest audit findings shown before the collapsible rest


@dataclass
class Grid:
    """A table ready to lay out: column names and rows of display strings (raw, unescaped)."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""

    @classmethod
    def from_frame(cls, df: pd.DataFrame, columns: Sequence[str] | None = None, caption: str = "") -> "Grid":
        cols = [c for c in (columns or df.columns) if c in df.columns] or list(df.columns)
        rows = [[format_cell(v) for v in row] for row in df[cols].itertuples(index=False)]
        return cls([str(c) for c in cols], rows, caption)

    @property
    def status_index(self) -> int | None:
        return self.columns.index("status") if "status" in self.columns else None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Link:
    name: str
    href: str
    caption: str = ""
    grid: Grid | None = None  # inlined in HTML when short


@dataclass
class AuditView:
    """Findings of the audit of the paper's own numbers, large ones first."""

    source: str  # "run" (tables/audit.csv) or "registry" (audited now, no run yet)
    large: Grid | None
    rounding: Grid | None  # findings rounding or macro-averaging could explain
    n_total: int
    n_errors: int
    n_claims: int | None = None
    n_checks: int | None = None
    rule: str = ""
    error: str = ""
    href: str = ""

    @property
    def lead(self) -> Grid | None:
        if self.large is None:
            return None
        return Grid(self.large.columns, self.large.rows[:AUDIT_LEAD], self.large.caption)

    @property
    def rest(self) -> Grid | None:
        if self.large is None or len(self.large) <= AUDIT_LEAD:
            return None
        return Grid(self.large.columns, self.large.rows[AUDIT_LEAD:])


@dataclass
class SettingsView:
    counts: dict[str, int]
    changed: list[str]  # "name: value (paper: x)"
    grid: Grid
    href: str

    @property
    def sentence(self) -> str:
        parts = [f"{self.counts.get('as in paper', 0)} settings as in paper",
                 f"{self.counts.get('changed', 0)} changed"
                 + (f" ({'; '.join(self.changed)})" if self.changed else ""),
                 f"{self.counts.get('not in paper', 0)} not in paper"]
        if self.counts.get("runtime"):
            parts.append(f"{self.counts['runtime']} runtime")
        others = [f"{n} {s}" for s, n in self.counts.items()
                  if s not in ("as in paper", "changed", "not in paper", "runtime")]
        return ", ".join(parts + others)


@dataclass
class InstrumentView:
    grid: Grid
    passed: int
    failed: int
    other: int = 0  # e.g. "not enforced" in smoke runs

    @property
    def counts_text(self) -> str:
        return f"{self.passed} passed, {self.failed} failed" + (
            f", {self.other} not enforced" if self.other else "")

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass
class ClaimCounts:
    settings: dict[str, int]
    evidence: dict[str, int]

    @staticmethod
    def _text(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"

    @property
    def settings_text(self) -> str:
        return self._text(self.settings)

    @property
    def evidence_text(self) -> str:
        return self._text(self.evidence)

    @property
    def phantom(self) -> int:
        return self.evidence.get("phantom run", 0)

    @property
    def short(self) -> str:
        return f"settings: {self.settings_text}; evidence: {self.evidence_text}"


@dataclass
class PaperSection:
    key: str
    title: str
    status: str
    has_run: bool = False
    failed: bool = False
    facts: list[tuple[str, str]] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    kind: str | None = None  # "phantom" or "real" (data source)
    data: str = "—"
    time: str = "—"
    real_command: str = ""
    real_data_note: str = ""
    error: dict[str, Any] | None = None
    audit: AuditView | None = None
    settings: SettingsView | None = None
    readings: list[str] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    instrument: InstrumentView | None = None
    counts: ClaimCounts | None = None
    results: Grid | None = None
    claims: Grid | None = None
    claims_href: str = ""
    no_claims: bool = False
    tables: list[Link] = field(default_factory=list)
    figures: list[Link] = field(default_factory=list)
    skipped: Grid | None = None
    skipped_count: int | None = None
    skipped_href: str = ""

    @property
    def is_phantom(self) -> bool:
        return self.kind == "phantom"


@dataclass
class ReportData:
    generated: str
    version: str
    commit: str
    sections: list[PaperSection]

    @property
    def failed(self) -> list[str]:
        return [s.key for s in self.sections if s.failed]

    def summary(self) -> Grid:
        rows = []
        for s in self.sections:
            audit = "—"
            if s.audit is not None and not s.audit.error:
                audit = f"{s.audit.n_total} finding{'' if s.audit.n_total == 1 else 's'}"
                if s.audit.rounding is not None and len(s.audit.rounding):
                    audit += f" ({len(s.audit.rounding)} explainable by rounding)"
            rows.append([s.key, s.status, s.data, s.time,
                         s.counts.settings_text if s.counts else "—",
                         s.counts.evidence_text if s.counts else "—",
                         audit])
        return Grid(["paper", "status", "data", "run time", "settings", "evidence", "audit"], rows)
