"""Lin et al. 2021 (Med Phys 48, doi:10.1002/mp.15196): Dscint for whole-body bone scintigraphy.

Notebook flow (`notebooks/lin2021_dscint_bone_scan.ipynb`)::

    exp = lin2021.setup(profile="quick")
    data = lin2021.load(exp)                      # scans, both evaluations' splits
    results = lin2021.train(exp, data)            # Dscint (+ baselines), predictions saved
    exp.table("abstract_metrics", lin2021.abstract_metrics(exp, results))
    ...
    lin2021.record_claims(exp, data, results)
    exp.finish()

Only the abstract is available and the scans are private: by default the run uses marked
phantoms written as DICOM NM files in the folder-per-class layout (`brainlib synth bonescan`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from brainlib.experiment import Experiment, open_experiment
from brainlib.papers.lin2021 import claims as _claims
from brainlib.papers.lin2021 import figures as _figures
from brainlib.papers.lin2021 import tables as _tables
from brainlib.papers.lin2021.data import ScanData, Split, data_table, leak_frame, load_scans, make_splits
from brainlib.papers.lin2021.settings import EVALUATIONS, Lin2021Settings
from brainlib.models.dscint import INCEPTION_MIN_SIDE
from brainlib.papers.lin2021.train import (DSCINT, ModelResult, metrics, predictions_frame, step_cost,
                                           train_all)
from brainlib.report import DataSource

PAPER = "lin2021"
CAPTIONS: dict[str, str] = {
    "data": "Scans and patients per class; images per part of each evaluation",
    "abstract_metrics": "Dscint: the abstract's five metrics (macro over 4 classes) beside ours, "
                        "value [95 % CI, bootstrap by patient], in each evaluation",
    "comparison": "Dscint vs the classical networks (and Dscint with the baselines' global "
                  "average pooling head, a control), same images and the same training budget "
                  "(optimiser, learning rate, epochs, batch, optimiser steps; nothing tuned per "
                  "network); paired bootstrap by patient and McNemar on per-image correctness; "
                  "paper networks not run in this profile listed with their measured step cost",
    "per_class": "Dscint per class (one-vs-rest): fixed-location thyroid carcinoma vs "
                 "non-fixed bone lesions",
    "fixed_location": "The abstract's fixed- vs non-fixed-location claim as a test: Dscint's "
                      "thyroid-carcinoma recall (and F1) minus the mean of metastasis and "
                      "arthritis, 95 % CI and two-sided p by patient bootstrap",
    "leakage": "Augmented test (the paper's) vs leakage-free evaluation of Dscint, and within "
               "the augmented test the images whose own scan was also trained on; 'inflation' "
               "rows: the differences (independent bootstraps by patient, 95 % CI)",
}


@dataclass
class Lin2021Data:
    """Scans and the splits of every evaluation run (a list: one split, or the folds)."""

    scans: ScanData
    splits: dict[str, list[Split]]
    leaks: dict[str, pd.DataFrame]

    @property
    def dataset(self) -> Any:
        return self.scans.dataset


def setup(profile: str = "quick", data_root: str | None = None, out_dir: str | os.PathLike = "outputs/lin2021",
          device: str = "auto", seed: int = 0, epochs: int | None = None, image_size: int | None = None,
          max_scans: int | None = None, evaluation: str | None = None) -> Experiment:
    """Resolve the profile and open the run (phantoms unless `data_root`)."""
    s = Lin2021Settings.for_profile(profile, epochs=epochs, image_size=image_size,
                                    max_scans=max_scans, evaluation=evaluation)
    params = {"profile": profile, "data_root": data_root, "out_dir": str(out_dir), "device": device,
              "seed": seed, "epochs": epochs, "image_size": image_size, "max_scans": max_scans,
              "evaluation": evaluation}
    source = DataSource("phantom", "scintigraphy", None,
                        {"patients": s.phantom_patients, "shape": list(s.phantom_shape),
                         "difficulty": s.difficulty}) if not data_root else \
        DataSource("real", "scintigraphy", str(data_root))
    exp = open_experiment(PAPER, s, params=params, out_dir=out_dir, device=device, seed=seed,
                          data_root=data_root, source=source, threads=s.threads, captions=CAPTIONS)
    if s.not_run:
        exp.deviate(f"{profile}: classical networks not trained: {', '.join(s.not_run)} "
                    f"({s.not_run_reason or 'CPU budget'})")
    if s.widths_reason and any(w != 1.0 for _, w in s.baseline_widths):
        exp.deviate(f"{profile}: classical network widths {dict(s.baseline_widths)}: {s.widths_reason}")
    if "lin2021_inception_v4" in s.baselines and s.size[1] < INCEPTION_MIN_SIDE:
        exp.deviate(f"Inception-v4: the {s.size[0]} x {s.size[1]} input is upsampled (bilinear) "
                    f"to a short side of {INCEPTION_MIN_SIDE} px, the smallest timm's network runs on")
    exp.note(f"every network gets the same training budget: Adam lr {s.lr:g}, weight decay "
             f"{s.weight_decay:g}, {s.epochs} epochs of batch {s.batch_size} on the same images "
             "and seed, validation accuracy picks the epoch; nothing is tuned per network. "
             "Readings made for Dscint alone: its head (flatten, after global average pooling "
             "failed on it; the comparison trains that head too as a control), He init, width "
             f"{s.dscint_width:g} (baselines: {dict(s.baseline_widths)})")
    exp.deviate("every network from random initialisation: no ImageNet weights offline "
                "(the abstract does not say whether the classical networks were pretrained)")
    return exp


def load(exp: Experiment) -> Lin2021Data:
    """Read the scans (the phantom mark decides the data source) and build every evaluation."""
    s = exp.settings
    with exp.timed("data"):
        scans = load_scans(s, exp.data_root, exp.seed)
        exp.use_dataset(scans.dataset, "scintigraphy")
        exp.skipped(scans.dataset.skipped)
        splits = {e: make_splits(scans, e, s, exp.seed) for e in s.evaluations}
    return Lin2021Data(scans, splits, {e: leak_frame(sp) for e, sp in splits.items()})


def data_summary(data: Lin2021Data) -> pd.DataFrame:
    return data_table(data.scans, data.splits)


def examples(data: Lin2021Data) -> plt.Figure:
    return _figures.examples_figure(data.dataset)


def train(exp: Experiment, data: Lin2021Data) -> dict[tuple[str, str], ModelResult]:
    """Train Dscint (every evaluation) and the baselines; save predictions and history."""
    results = train_all(exp, data.splits)
    for ev in data.splits:
        exp.predictions(f"predictions_{ev}", predictions_frame(
            {k: r for k, r in results.items() if k[0] == ev}))
    hist = pd.concat([r.history.assign(model=r.label, evaluation=e) for (e, _), r in results.items()],
                     ignore_index=True)
    exp.table("training_history", hist, "Per-epoch history (validation accuracy picks the epoch)")
    return results


def abstract_metrics(exp: Experiment, results: dict) -> pd.DataFrame:
    return _tables.abstract_table(results, exp.settings.n_boot, exp.seed)


def comparison(exp: Experiment, data: Lin2021Data, results: dict) -> pd.DataFrame:
    """The comparison table; a paper network the profile leaves out gets one timed engine step
    (`measure_not_run`) in the first comparison evaluation. Whether Dscint still leads with the
    classical networks' pooling head (its control) is printed and kept as a note of the run."""
    s = exp.settings
    costs = []
    if s.measure_not_run:
        ev = s.comparison_evaluations[0]
        for name in s.not_run:
            with exp.timed(f"step cost {name}"):
                costs.append(step_cost(exp, data.splits[ev][0], name))
    for note in _tables.head_notes(results):  # into the manifest and report, and shown here
        exp.note(note)
        print(f"Head control: {note}.")
    return _tables.comparison_table(results, s.n_boot, exp.seed, costs, s.not_run_reason)


def fixed_location(exp: Experiment, results: dict) -> pd.DataFrame:
    return _tables.fixed_location_table(results, exp.settings.n_boot, exp.seed)


def per_class(results: dict) -> pd.DataFrame:
    return _tables.per_class_table(results)


def leakage(exp: Experiment, data: Lin2021Data, results: dict) -> pd.DataFrame:
    return _tables.leakage_table(results, data.leaks, exp.settings.n_boot, exp.seed)


def confusion_matrices(results: dict) -> plt.Figure:
    return _figures.confusion_figure(results)


def training_curves(results: dict) -> plt.Figure:
    return _figures.history_figure(results)


def attention_maps(data: Lin2021Data, results: dict) -> plt.Figure:
    """Dscint's spatial attention on test scans (leakage-free test when run; with
    cross-validation the last fold's model on that fold's test scans)."""
    ev = "leakage_free" if "leakage_free" in data.splits else next(iter(data.splits))
    ids = set(data.splits[ev][-1].test.source)
    rows = np.array([i for i, c in enumerate(data.dataset.ids) if c in ids])
    return _figures.attention_figure(data.dataset, results[(ev, DSCINT)].model, data.scans.truth,
                                     rows if rows.size else None)


def positive_control(exp: Experiment, results: dict) -> bool:
    """Dscint must reach the macro-F1 floor (leakage-free test when run) for the run to count."""
    ev = "leakage_free" if ("leakage_free", DSCINT) in results else next(e for e, _ in results)
    f1 = metrics(results[(ev, DSCINT)])["f1_macro"]
    return exp.check(f"Dscint macro F1 ({ev})", f1, exp.settings.f1_floor,
                     "phantom classes are plainly distinguishable at the working size",
                     enforce=exp.profile != "smoke")


def record_claims(exp: Experiment, data: Lin2021Data, results: dict) -> None:
    """Record the claims, and the kernel's CPU seconds so far in the manifest's timings (wall
    time on the shared machine says little about the run's own cost)."""
    _claims.record_claims(exp, data.dataset, results)
    exp.timings["process CPU s (whole kernel so far)"] = time.process_time()


__all__ = ["CAPTIONS", "EVALUATIONS", "Lin2021Data", "Lin2021Settings", "PAPER", "abstract_metrics",
           "attention_maps", "comparison", "confusion_matrices", "data_summary", "examples", "fixed_location", "leakage",
           "load", "per_class", "positive_control", "record_claims", "setup", "train", "training_curves"]
