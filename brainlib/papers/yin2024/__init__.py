"""Yin et al. (2024, Sci Rep): brain CT image classification with Mask R-CNN, a deformable
ResNet-10 backbone and TCCBAM attention, on CQ500- and DeepLesion-layout data.

The notebook ``notebooks/yin2024_maskrcnn_tccbam.ipynb`` calls, in order::

    exp = yin2024.setup(profile=..., data_root=..., dataset=...)
    sets = yin2024.load(exp)                        # images, classes, instances, splits
    res, cls = yin2024.classification(exp, sets)    # Tables 2-4 networks, saved predictions
    det = yin2024.detection(exp, sets, res, cls)    # Table 6 Mask R-CNNs (backbones from cls)
    exp.table("table2", yin2024.table(exp, sets, res, "table2")) ... table5, table6
    yin2024.conclude(exp, sets, res)                # claims and the positive control
    exp.finish()
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from brainlib.engine.parallel import Job, run_jobs
from brainlib.experiment import Experiment, open_experiment
from brainlib.models.yin2024 import MASKRCNN_BACKBONES
from brainlib.papers.yin2024 import claims as _claims
from brainlib.papers.yin2024 import figures, tables, train
from brainlib.papers.yin2024.data import ImageSet, load as _load
from brainlib.papers.yin2024.settings import CAPTIONS, PAPER, Yin2024Settings
from brainlib.report import data_source

#: Positive-control floor, set before measuring quick: the proposed model must reach 0.5
#: accuracy (chance 0.25 with four classes) and beat the majority class by 0.15. Not lowered to
#: fit a measurement. Since issue 11's follow-up it is judged, as the issue defines the control,
#: on the test images whose lesion is visible at the working size (claims.VISIBLE_MIN_PIXELS,
#: rule fixed before measuring; normal images always in); all test images stay a separate,
#: non-gating row. Quick (96 px, backbones from the classifiers, batch 4 x 12 epochs,
#: half-positive RoIs, two anchor sides per level), seeds 0 / 1 / 2: visible 0.484 (31 images) /
#: 0.500 (26) / 0.583 (36), all 0.405 / 0.412 / 0.488 with torchvision's DCN; with the CPU
#: grid_sample DCN (same function to float rounding, 5-7x faster) 0.484 / 0.577 / 0.278, all
#: 0.405 / 0.441 / 0.233: the outcome swings with training noise. With 80 images per class
#: (train 163, test 57) it passes on every seed: 0.614 (44) / 0.533 (45; floor 0.506 from the
#: majority margin) / 0.633 (49), all 0.491 / 0.424 / 0.534 (docs/PERFORMANCE.md, "yin2024
#: quick"). Floor unchanged.
FLOORS = {"accuracy": 0.5, "margin": 0.15}
#: Tables 2-4: (table, prefix of the registry name) in the paper's row order.
CLASSIFIER_TABLES = {"table2": "", "table3": "d", "table4": ("cbam_d", "tccbam_d")}

__all__ = ["CAPTIONS", "FLOORS", "PAPER", "Yin2024Settings", "classification", "conclude", "detection",
           "figures", "load", "setup", "table", "table5", "table6", "training_history"]

Results = dict[str, dict[str, dict[str, pd.DataFrame]]]  # dataset -> table -> row -> predictions


def setup(profile: str = "quick", data_root: str | None = None, out_dir: str | os.PathLike = "outputs/yin2024",
          device: str = "auto", seed: int = 0, dataset: str | None = None, epochs: int | None = None,
          image_size: int | None = None, max_images: int | None = None) -> Experiment:
    """Resolve the profile (``epochs`` sets classifiers and detectors) and open the run."""
    over: dict[str, Any] = {"dataset": dataset, "image_size": image_size, "max_images": max_images}
    if epochs is not None:
        over.update(epochs=epochs, det_epochs=epochs)
    settings = Yin2024Settings.for_profile(profile, **over)
    params = {"profile": profile, "data_root": data_root, "out_dir": str(out_dir), "device": device,
              "seed": seed, "dataset": dataset, "epochs": epochs, "image_size": image_size,
              "max_images": max_images}
    layout = "+".join(settings.datasets)
    phantom = None if data_root else {"cq500_studies": settings.phantom_studies, "size": settings.phantom_size,
                                      "deeplesion_patients": settings.phantom_patients,
                                      "difficulty": settings.difficulty, "seed": settings.phantom_seed}
    source = data_source(data_root, layout, **({"phantom": phantom} if phantom else {}))
    notes = ["The paper's Fig. 9 names lung-disease classes (Normal, NSIP, OP, UIP) for brain CT; "
             "we classify CQ500 slices as normal / intra-axial bleed / extra-axial bleed / fracture "
             "and DeepLesion slices as normal / lung / liver / kidney lesion (settings table).",
             "Image-level class of a Mask R-CNN: the best detection's class, normal when no detection "
             "scores above a threshold chosen on the validation split (table 'thresholds').",
             "On CPU runs are bit-identical per seed; on CUDA roi_align's backward is not deterministic, "
             "so GPU runs agree only to within run-to-run noise (compare CIs, not digits); not "
             "measured here (no GPU), expect differences up to the seed-to-seed spread measured on "
             "CPU (quick control 0.533-0.633 over seeds 0-2, docs/PERFORMANCE.md)."]
    return open_experiment(PAPER, settings, params=params, out_dir=out_dir, device=device, seed=seed,
                           data_root=data_root, source=source, threads=settings.threads,
                           captions=CAPTIONS, notes=notes)


def load(exp: Experiment) -> dict[str, ImageSet]:
    """The image sets of the run (phantoms unless ``data_root``)."""
    return _load(exp)


def classifier_names(exp: Experiment, table_name: str) -> list[str]:
    prefixes = CLASSIFIER_TABLES[table_name]
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return [f"yin2024_{p}resnet{d}" for d in exp.settings.depths for p in prefixes]


def _backbone_name(exp: Experiment, variant: str) -> str | None:
    """The classifier whose weights start detector `variant`'s backbone (None: random init)."""
    return MASKRCNN_BACKBONES[variant] if exp.settings.det_init == "classifier" else None


def prefetch(exp: Experiment, sets: dict[str, ImageSet]) -> dict[str, float]:
    """Train every network of Tables 2-4 and 6 side by side on ``train_workers`` processes
    (`brainlib.engine.parallel`); each detector waits for its backbone classifier. The
    sequential code of `classification` and `detection` then loads the finished checkpoints,
    so the numbers are those of a one-process run. Returns seconds per training ({} with one
    worker: nothing runs here)."""
    s = exp.settings
    if s.train_workers <= 1:
        return {}
    jobs: list[Job] = []
    for name, data in sets.items():
        backbones = {v: _backbone_name(exp, v) for v in s.ablation}
        first = list(dict.fromkeys(b for b in backbones.values() if b))
        rest = [m for t in CLASSIFIER_TABLES for m in classifier_names(exp, t) if m not in first]
        # backbones, then the detectors (the longest trainings start as early as they can),
        # then the other classifiers filling the gaps
        jobs += [Job(f"{name}/{m}", train.prefetch_classifier, (exp, data, m)) for m in first]
        jobs += [Job(f"{name}/{v}", train.prefetch_detector, (exp, data, v, b),
                     after=(f"{name}/{b}",) if b else ()) for v, b in backbones.items()]
        jobs += [Job(f"{name}/{m}", train.prefetch_classifier, (exp, data, m)) for m in rest]
    with exp.timed("prefetch"):
        seconds = run_jobs(jobs, s.train_workers, s.threads)
    exp.note(f"{len(jobs)} trainings on {s.train_workers} worker processes in "
             f"{exp.timings['prefetch']:.0f} s wall (" +
             ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ")")
    return seconds


def classification(exp: Experiment, sets: dict[str, ImageSet]) -> tuple[Results, list[train.Trained]]:
    """Train every network of Tables 2-4 on each dataset; save test predictions. With
    ``train_workers > 1`` the detectors of Table 6 are trained here too, side by side with
    the classifiers (`prefetch`); `detection` then loads them."""
    prefetch(exp, sets)
    results: Results = {}
    trained_all = []
    for name, data in sets.items():
        results[name] = {}
        for table_name in CLASSIFIER_TABLES:
            rows = {}
            for model in classifier_names(exp, table_name):
                trained = train.train_classifier(exp, data, model)
                trained_all.append(trained)
                row = tables.display_name(model)
                rows[row] = exp.predictions(f"{name}_{model.removeprefix('yin2024_')}",
                                            train.classify(exp, trained, data))
            results[name][table_name] = rows
    return results, trained_all


def detection(exp: Experiment, sets: dict[str, ImageSet], results: Results,
              classifiers: list[train.Trained] | None = None) -> list[train.Trained]:
    """Train the Mask R-CNNs of Table 6 on each dataset; save test predictions into ``results``.

    With ``det_init = "classifier"`` each detector's backbone starts from the trained classifier
    of the same variant (``MASKRCNN_BACKBONES``) taken from ``classifiers``; one that the tables
    did not train (TCCBAM-ResNet-10 for "+AM") is trained here on the same training split."""
    trained_all = []
    by_key = {(t.dataset, t.name): t for t in classifiers or []}
    for name, data in sets.items():
        rows = {}
        for variant in exp.settings.ablation:
            backbone = None
            source = _backbone_name(exp, variant)
            if source is not None:
                backbone = by_key.get((name, source)) or train.train_classifier(exp, data, source)
                by_key[(name, source)] = backbone
            trained = train.train_detector(exp, data, variant, backbone)
            trained_all.append(trained)
            rows[variant] = exp.predictions(f"{name}_{variant}", train.detect(exp, trained, data))
        results.setdefault(name, {})["table6"] = rows
    return trained_all


def table(exp: Experiment, sets: dict[str, ImageSet], results: Results, table_name: str) -> pd.DataFrame:
    """Tables 2-4: one block of rows per dataset (metrics from the saved predictions)."""
    s = exp.settings
    frames = [tables.model_rows(results[n][table_name], sets[n].classes, s.n_boot, exp.seed,
                                tables.classifier_claim).assign(dataset=n) for n in results if table_name in results[n]]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if table_name == "table4" and len(out):
        pairs = [(f"TCCBAM-DResNet{d}", f"CBAM-DResNet{d}") for d in s.depths]
        tests = [tables.paired_rows(results[n]["table4"], pairs, sets[n].classes, s.n_boot, exp.seed).assign(dataset=n)
                 for n in results]
        exp.table("table4_paired", pd.concat(tests, ignore_index=True),
                  "Table 4 paired tests: TCCBAM minus CBAM on each DResNet (same test images)")
    return out


def table6(exp: Experiment, sets: dict[str, ImageSet], results: Results) -> pd.DataFrame:
    s = exp.settings
    frames = []
    for n in results:
        rows = {tables.TABLE6_NAMES[k]: v for k, v in results[n].get("table6", {}).items()}
        claim = {tables.TABLE6_NAMES[k]: v for k, v in tables.TABLE6_CLAIMS.items()}
        frames.append(tables.model_rows(rows, sets[n].classes, s.n_boot, exp.seed, claim.get).assign(dataset=n))
        pairs = [("maskrcnn_dc_am", k) for k in s.ablation if k != "maskrcnn_dc_am"]
        paired = tables.paired_rows(results[n]["table6"], pairs, sets[n].classes, s.n_boot, exp.seed)
        exp.table(f"table6_paired_{n}", paired, f"Table 6 paired tests on {n}: full model minus each ablation")
    return pd.concat(frames, ignore_index=True)


def table5(exp: Experiment, t6: pd.DataFrame) -> pd.DataFrame:
    ours = t6[t6["model"] == tables.TABLE6_NAMES["maskrcnn_dc_am"]]
    return tables.table5(ours)


def thresholds(trained: list[train.Trained]) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": t.dataset, "network": t.name, "threshold": t.extra["threshold"],
                          "val accuracies": ", ".join(f"{v:.2f}" for v in t.extra["threshold_table"]["val_accuracy"])}
                         for t in trained if "threshold" in t.extra])


def training_history(trained: list[train.Trained]) -> pd.DataFrame:
    return train.history(trained)


def examples(exp: Experiment, sets: dict[str, ImageSet], trained: list[train.Trained]) -> Any:
    """Example detections of the full model on the first dataset's test lesions."""
    full = [t for t in trained if t.name == "maskrcnn_dc_am"]
    if not full:
        return None
    data = sets[full[0].dataset]
    test = data.part("test")
    pick = [int(test[data.label[test] == k][0]) for k in range(1, len(data.classes)) if (data.label[test] == k).any()]
    pick = (pick or [int(i) for i in test])[:exp.settings.examples]
    if not pick:
        return None
    return figures.example_detections(train.detections(exp, full[0], data, np.asarray(pick)), data.classes)


def conclude(exp: Experiment, sets: dict[str, ImageSet], results: Results) -> None:
    """Record the paper's claims and the positive control (the proposed model on the first dataset)."""
    _claims.record_claims(exp, sets, results)
    first = next(iter(results))
    full = results[first].get("table6", {}).get("maskrcnn_dc_am")
    if full is not None:
        data = sets[first]
        _claims.positive_control(exp, full, data, exp.settings.image_size, FLOORS)
