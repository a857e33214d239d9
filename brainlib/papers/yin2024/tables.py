"""Tables of the yin2024 notebook, computed from the saved per-image predictions.

Metrics (the paper's eqs. 14-18, over the dataset's four classes): accuracy; precision,
recall and F1 macro-averaged over classes (F1 = per-class 2PR/(P+R), then averaged; classes
never predicted count 0 precision, as scikit-learn's ``zero_division=0``); Cohen's kappa.
Numbers in percent with 95 % percentile bootstrap CIs over test images; paired tests: a
bootstrap of the F1 difference on the same resamples and McNemar on per-image correctness.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from brainlib.claims import load_claims
from brainlib.metrics import bootstrap_ci, mcnemar, paired_bootstrap
from brainlib.papers.yin2024.settings import PAPER

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "kappa")


def scores(y: np.ndarray, p: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, macro precision / recall / F1 and Cohen's kappa (numpy; equals scikit-learn)."""
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (y, p), 1)
    n = cm.sum()
    tp, pred, true = np.diag(cm), cm.sum(0), cm.sum(1)
    prec = np.divide(tp, pred, out=np.zeros(n_classes), where=pred > 0)
    rec = np.divide(tp, true, out=np.zeros(n_classes), where=true > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(n_classes), where=(prec + rec) > 0)
    po = tp.sum() / max(n, 1)
    pe = float((pred * true).sum() / max(n * n, 1))
    kappa = (po - pe) / (1 - pe) if pe < 1 else (1.0 if po == 1 else 0.0)
    return {"accuracy": float(po), "precision": float(prec.mean()), "recall": float(rec.mean()),
            "f1": float(f1.mean()), "kappa": float(kappa)}


def truth_and_pred(frame: pd.DataFrame, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    y = frame[[f"label_{c}" for c in classes]].to_numpy().argmax(1)
    p = frame[[f"score_{c}" for c in classes]].to_numpy().argmax(1)
    return y, p


def _metric(name: str, n_classes: int) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda y, p: scores(np.asarray(y), np.asarray(p), n_classes)[name]


def paper_value(claim_id: str) -> float:
    claims = load_claims(PAPER).set_index("claim_id")
    return float(claims.at[claim_id, "value"]) if claim_id in claims.index else float("nan")


def model_rows(preds: dict[str, pd.DataFrame], classes: tuple[str, ...], n_boot: int, seed: int,
               claim_of: Callable[[str], str | None]) -> pd.DataFrame:
    """One row per model: each metric in % with its CI, beside the paper's value."""
    rows = []
    for model, frame in preds.items():
        y, p = truth_and_pred(frame, classes)
        row: dict = {"model": model, "n": len(y)}
        for m in METRICS:
            ci = bootstrap_ci(_metric(m, len(classes)), y, p, n_boot=n_boot, seed=seed)
            row[f"{m} %"] = round(ci.estimate * 100, 2)
            row[f"{m} CI"] = f"{ci.low * 100:.1f}-{ci.high * 100:.1f}"
            cid = claim_of(model)
            row[f"paper {m} %"] = paper_value(f"{cid}/{m}") if cid else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def paired_rows(preds: dict[str, pd.DataFrame], pairs: list[tuple[str, str]], classes: tuple[str, ...],
                n_boot: int, seed: int) -> pd.DataFrame:
    """A minus B for each pair: F1 difference (paired bootstrap) and McNemar on correctness."""
    rows = []
    for a, b in pairs:
        if a not in preds or b not in preds:
            continue
        ya, pa = truth_and_pred(preds[a], classes)
        yb, pb = truth_and_pred(preds[b].set_index("case_id").loc[preds[a]["case_id"]].reset_index(), classes)
        if not np.array_equal(ya, yb):
            raise ValueError(f"{a} and {b} were not scored on the same images")
        boot = paired_bootstrap(_metric("f1", len(classes)), ya, pa, pb, n_boot=n_boot, seed=seed)
        mc = mcnemar(pa == ya, pb == ya)
        rows.append({"A": a, "B": b, "F1 A %": round(boot.metric_a * 100, 2),
                     "F1 B %": round(boot.metric_b * 100, 2), "F1 A-B %": round(boot.difference * 100, 2),
                     "CI": f"{boot.low * 100:.1f}-{boot.high * 100:.1f}", "p (bootstrap)": round(boot.p_value, 4),
                     "only A right": mc.b, "only B right": mc.c, "p (McNemar)": round(mc.p_value, 4)})
    return pd.DataFrame(rows)


def display_name(registry_name: str) -> str:
    """``yin2024_tccbam_dresnet10`` -> ``TCCBAM-DResNet10`` (the paper's row names)."""
    core = registry_name.removeprefix("yin2024_")
    parts = core.split("_")
    att = [p.upper() for p in parts[:-1]]
    net = parts[-1].replace("dresnet", "DResNet").replace("resnet", "ResNet")
    return "-".join(att + [net])


def classifier_claim(model: str) -> str | None:
    """Claim prefix of a Tables 2-4 row (``table4/tccbam_dresnet10``)."""
    core = model.lower().replace("-", "_")
    if core.startswith(("cbam", "tccbam")):
        return f"table4/{core}"
    return f"table3/{core}" if core.startswith("dresnet") else f"table2/{core}"


TABLE6_CLAIMS = {"maskrcnn": "table6/maskrcnn", "maskrcnn_dc": "table6/maskrcnn_dc",
                 "maskrcnn_am": "table6/maskrcnn_am", "maskrcnn_dc_am": "table6/ours"}
TABLE6_NAMES = {"maskrcnn": "Mask RCNN", "maskrcnn_dc": "Mask RCNN + DC", "maskrcnn_am": "Mask RCNN + AM",
                "maskrcnn_dc_am": "Mask RCNN + DC + AM"}


def table5(ours: pd.DataFrame) -> pd.DataFrame:
    """The measured full model beside the paper's Table 5 rows (other methods quoted, not re-run)."""
    rows = []
    for key, name in (("cdl", "CDL"), ("facnn", "FACNN"), ("mmdl", "MMDL"), ("hie", "HIE")):
        rows.append({"model": name, "source": "paper (not re-run)",
                     **{f"paper {m} %": paper_value(f"table5/{key}/{m}") for m in METRICS}})
    for r in ours.to_dict("records"):
        rows.append({"model": "Mask RCNN + TCCBAM-DResNet10", "source": f"measured ({r['dataset']})",
                     **{k: v for k, v in r.items() if k not in ("model", "dataset")},
                     **{f"paper {m} %": paper_value(f"table5/ours/{m}") for m in METRICS}})
    return pd.DataFrame(rows)


def confusion(frame: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    y, p = truth_and_pred(frame, classes)
    cm = np.zeros((len(classes), len(classes)), int)
    np.add.at(cm, (y, p), 1)
    return pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
