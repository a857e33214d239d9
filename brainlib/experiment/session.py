"""The experiment session every paper notebook opens: `exp = <paper>.setup(**params)`.

An `Experiment` holds the resolved settings, device, seed, torch threads, the data source (and
whether it is synthetic), the run folder, the deviations and readings derived from the
settings, a `ClaimRecorder`, and timings. Paper code returns tables and figures as data; the
session saves them (CSV/MD/TeX, PNG/PDF) with captions composed from the data source and the
deviations, and `finish()` puts the recorded numbers beside the paper's claims and writes the
manifest. One shape for every paper (he2024, wang_drct2, yin2024, lin2021, pandiyaraju2024).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd
import torch

from brainlib import claims as claims_registry
from brainlib.engine import resolve_device, torch_threads
from brainlib.engine.distributed import env_info
from brainlib.experiment.estimate import full_run_text
from brainlib.experiment.recorder import ClaimRecorder
from brainlib.experiment.settings import Deviation, Reading, Settings, deviation_texts
from brainlib.report import DataSource, Run, start_run


class InstrumentCheckError(RuntimeError):
    """A positive control failed: the pipeline did not learn what it plainly should."""


class Experiment:
    """One paper's run: settings, device, data source, outputs and measured claims."""

    def __init__(self, paper: str, settings: Settings, run: Run, device: torch.device,
                 seed: int, data_root: str | os.PathLike | Mapping[str, Any] | None,
                 captions: Mapping[str, str] | None = None) -> None:
        self.paper = paper
        self.settings = settings
        self.run = run
        self.device = device
        self.seed = int(seed)
        self.data_root = data_root
        self.captions = dict(captions or {})
        self.claims = ClaimRecorder(paper)
        self.timings: dict[str, float] = {}
        self.extra_deviations: list[str] = []
        self.extra_readings: list[Reading] = []
        self.comparison: pd.DataFrame | None = None
        self.checks: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ provenance
    @property
    def profile(self) -> str:
        return self.settings.profile

    @property
    def out_dir(self) -> Path:
        return self.run.out_dir

    @property
    def data_source(self) -> DataSource:
        return self.run.data_source

    @property
    def synthetic(self) -> bool:
        """True when the data are phantoms (embedded, or a marked phantom tree as data_root)."""
        return self.run.data_source.is_phantom

    @property
    def deviations(self) -> list[str]:
        """Settings that differ from the paper's (one text per reason), then deviations found
        while running."""
        return deviation_texts(self.settings.deviations()) + list(self.extra_deviations)

    @property
    def readings(self) -> list[str]:
        """What the paper leaves open and what we chose (settings first, then run-time)."""
        return [str(r) for r in (*self.settings.readings(), *self.extra_readings)]

    @property
    def notes(self) -> list[str]:
        return self.run.notes

    def deviate(self, text: str) -> None:
        """Record a deviation found at run time (e.g. no ImageNet weights: random init)."""
        self.extra_deviations.append(text)
        self.run.add_deviation(text)

    def read(self, name: str, value: Any, why: str) -> None:
        """Record a reading made at run time (a choice the paper does not fix)."""
        reading = Reading(name, value, why)
        self.extra_readings.append(reading)
        self.run.readings.append(str(reading))

    def note(self, text: str) -> None:
        self.run.add_note(text)

    def use_data(self, source: DataSource) -> None:
        """Set where the data came from once a loader has read the phantom mark."""
        self.run.data_source = source

    def use_datasets(self, datasets: Mapping[str, Any], **details: Any) -> None:
        """Several datasets (e.g. CQ500 and RSNA): phantom if any is synthetic, stated per layout.

        A run mixing a real dataset with a phantom one is still a phantom run: its numbers are
        never graded against the paper.
        """
        marks = {layout: bool(ds.synthetic) for layout, ds in datasets.items()}
        roots = {layout: str(getattr(ds, "root", "") or "") for layout, ds in datasets.items()}
        kind = "phantom" if any(marks.values()) else "real"
        merged = {**dict(self.data_source.details), **details, "synthetic_by_layout": marks,
                  "roots": roots}
        layout = "+".join(datasets)
        root = None if kind == "phantom" else "; ".join(roots.values())
        self.use_data(DataSource(kind, layout, root, merged))

    def threads(self, n: int | None) -> Any:
        """Context: run a block with `n` torch CPU threads, then restore (engine.torch_threads)."""
        return torch_threads(n)

    def use_dataset(self, dataset: Any, layout: str, **details: Any) -> None:
        """Take the data source from a loaded dataset: its files' phantom mark decides.

        `dataset.synthetic` is True when every file carries the phantom mark, False when none
        does, and raises `brainlib.data.MixedDataError` for a tree that mixes both.
        """
        root = getattr(dataset, "root", None)
        kind = "phantom" if dataset.synthetic else "real"
        merged = {**dict(self.data_source.details), **details}
        self.use_data(DataSource(kind, layout, str(root) if root else None, merged))

    def summary(self) -> pd.DataFrame:
        """Every setting with the paper's value, status and source (what the manifest records)."""
        return self.settings.table()

    # ------------------------------------------------------------------ artefacts
    def caption(self, name: str, caption: str | None = None) -> str:
        text = caption if caption is not None else self.captions.get(name, "")
        return text

    def table(self, name: str, df: pd.DataFrame, caption: str | None = None) -> pd.DataFrame:
        """Save `df` as tables/<name>.csv|md|tex (caption from the paper's CAPTIONS); return it."""
        self.run.save_table(df, name, self.caption(name, caption))
        return df

    def figure(self, name: str, fig: Any, caption: str | None = None) -> Any:
        """Save `fig` as figures/<name>.png|pdf and return it for display (None passes); the
        caption (from CAPTIONS unless given) is recorded in the manifest and the report."""
        if fig is not None:
            self.run.save_figure(fig, name, self.caption(name, caption))
        return fig

    def predictions(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        self.run.save_predictions(df, name)
        return df

    def skipped(self, items: Sequence[Any]) -> None:
        if items:
            self.run.add_skipped(items)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the wall time of the block to `timings[name]` (recorded in the manifest)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    def checkpoint_dir(self, name: str, **extra: Any) -> Path:
        """Where one training keeps its checkpoints, under the run folder and kept across runs.

        The folder name carries a digest of the settings, seed, data source and `extra`, so a
        rerun of the same command resumes (or reuses a finished training) while any change
        starts afresh instead of resuming stale weights.
        """
        key = json.dumps({"settings": self.settings.to_dict(), "seed": self.seed,
                          "data": self.data_source.to_dict(), "extra": extra},
                         sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.out_dir / "checkpoints" / f"{name}-{digest}"

    # ------------------------------------------------------------------ instrument checks
    def check(self, name: str, value: float, floor: float, what: str = "",
              enforce: bool = True) -> bool:
        """A positive control: `value` must reach `floor` for the run to say anything.

        Checks are instrument checks, not the paper's claims: they show that the pipeline
        learns plainly visible synthetic lesions. Saved as tables/instrument_checks; a failed
        enforced check makes `finish()` raise `InstrumentCheckError` after every artefact is
        written (the notebook fails, the report shows why). `enforce=False` (smoke runs, too
        short to learn) records the value without judging it.
        """
        passed = bool(value >= floor) if value == value else False  # NaN fails
        status = ("pass" if passed else "FAIL") if enforce else "not enforced"
        self.checks.append({"check": name, "value": float(value), "floor": float(floor),
                            "passed": passed, "status": status, "what": what})
        self.run.save_table(pd.DataFrame(self.checks), "instrument_checks",
                            "Instrument checks (positive controls): the paper's main model "
                            "must reach each floor on plainly visible phantom lesions before "
                            "its numbers mean anything; separate from the paper's claims")
        return passed

    def failed_checks(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["status"] == "FAIL"]

    # ------------------------------------------------------------------ claims
    def record_settings(self, claim_fields: Mapping[str, str | Any]) -> None:
        """Record `setting` claims from the settings: {claim id: field name}.

        A value that is not a field name (e.g. a module constant) is recorded as is. The note
        of a changed setting says which profile changed it and why.
        """
        names = set(self.settings.to_dict())
        for cid, field in claim_fields.items():
            if isinstance(field, str) and field in names:
                value = getattr(self.settings, field)
                note = ""
                dev = {d.name: d for d in self.settings.deviations()}.get(field)
                if dev is not None:
                    note = f"{self.profile}: {dev.reason}"
                self.claims.add(cid, value, note=note)
            else:
                self.claims.add(cid, field)

    def compare_claims(self) -> pd.DataFrame:
        """Every claim of the paper beside the recorded measurement (saved as tables/claims)."""
        table = claims_registry.compare(self.paper, self.claims.frame(), self.data_source.label,
                                        synthetic=self.synthetic, profile=self.profile)
        self.comparison = table
        self.run.claims = table
        self.run.save_table(table, "claims", f"{self.paper}: the paper's numbers beside the "
                            "measured ones; status from the claim's kind and the data")
        findings = claims_registry.audit(self.paper, out_dir=None)
        self.run.audit = findings
        self.run.save_table(findings, "audit",
                            f"{self.paper}: inconsistencies in the paper's own numbers")
        self.run.save_table(claims_registry.audit_checks(self.paper), "audit_checks",
                            f"{self.paper}: every arithmetic check of the paper's numbers")
        return table

    def finish(self) -> Path:
        """Compare the recorded claims (if not done), save the settings, write the manifest."""
        if self.comparison is None:
            self.compare_claims()
        self.run.save_table(self.settings.table(), "settings",
                            f"{self.paper}: every setting, the paper's value and its source")
        self.run.params["settings"] = self.settings.to_dict()
        self.run.params["timings_seconds"] = {k: round(v, 1) for k, v in self.timings.items()}
        self.run.params["instrument_checks"] = self.checks
        path = self.run.finish()
        failed = self.failed_checks()
        if failed:
            raise InstrumentCheckError(
                f"{self.paper}: positive control(s) failed: " + "; ".join(
                    f"{c['check']} = {c['value']:.3f} < floor {c['floor']:.3f}" for c in failed)
                + " — the pipeline does not learn plainly visible lesions; its numbers are not "
                "a measurement (artefacts written to " + str(self.out_dir) + ")")
        return path


def open_experiment(
    paper: str,
    settings: Settings,
    *,
    params: Mapping[str, Any],
    out_dir: str | os.PathLike,
    device: str = "auto",
    seed: int = 0,
    data_root: str | os.PathLike | Mapping[str, Any] | None = None,
    source: DataSource,
    threads: int | None = None,
    captions: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> Experiment:
    """Open the run folder and return the session (what each paper's `setup` calls).

    `threads` sets torch's CPU threads for this process (None leaves torch's default); it is
    the one piece of global state a session changes, and it is recorded in the manifest.
    """
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(int(threads))
    deviations: list[Deviation] = settings.deviations()
    run = start_run(paper, {**params, "threads": torch.get_num_threads()}, out_dir, source,
                    deviation_texts(deviations), notes)
    run.readings.extend(str(r) for r in settings.readings())
    if params.get("profile") == "full":  # what the paper-scale run costs (docs/scale.md)
        run.add_note("GPU-hour estimate: " + full_run_text([paper]))
    if env_info().active:
        run.add_note(f"trainings on {env_info().world_size} processes (torch.distributed, DDP)")
    return Experiment(paper, settings, run, dev, seed, data_root, captions)
