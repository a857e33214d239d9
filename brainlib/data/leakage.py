"""Near-duplicate leakage audit for any image classification dataset.

BUSI (Al-Dhabyani et al. 2020) holds duplicated images; a split that puts copies of one image
on both sides measures memory, not generalisation, and very high reported accuracies on it
(Pandiyaraju et al. 2024, arXiv 2407.02844: 99.2 %) should be checked for that (DESIGN.md,
"Leakage"). This module finds near duplicates with a perceptual hash, lists the pairs that
cross splits or classes, and recomputes metrics without the affected evaluation cases.

The hash is the DCT perceptual hash of ``imagehash.phash`` (Zauner 2010), written here with
scipy so it needs no further dependency: grey image resized to 32 x 32 (Lanczos), 2-D DCT-II,
the 8 x 8 lowest frequencies thresholded at their median -> 64 bits. Candidate pairs are those
whose hashes differ in at most ``threshold`` bits; since images of one modality share much of
their layout (ultrasound: skin, fat and gland layers), a candidate is confirmed only when the
Pearson correlation of the two images at 64 x 64 is at least ``min_correlation``. On the
BUSI-layout phantoms (known duplicates written by the generator) distinct images reached
Hamming 4 with correlation <= 0.87, near copies (a few pixels cropped, brightness +-10 %)
Hamming <= 4 with correlation >= 0.92.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy.fft import dct

#: Default Hamming distance (of 64 bits) at or below which two images are candidates.
DEFAULT_THRESHOLD = 8
#: Default correlation (64 x 64 grey) a candidate needs to count as a near duplicate.
DEFAULT_MIN_CORRELATION = 0.9
THUMB = 64


def phash(image: np.ndarray, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """Perceptual hash of a 2-D grey (or H x W x C, averaged) image: ``hash_size**2`` bools."""
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    if arr.ndim != 2:
        raise ValueError(f"phash needs a 2-D image, got shape {arr.shape}")
    side = hash_size * highfreq_factor
    arr = _grey_uint8(arr)
    small = np.asarray(Image.fromarray(arr).resize((side, side), Image.LANCZOS), dtype=np.float64)
    coeffs = dct(dct(small, axis=0, norm=None), axis=1, norm=None)[:hash_size, :hash_size]
    return (coeffs > np.median(coeffs)).ravel()


def _grey_uint8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    if arr.dtype != np.uint8:
        lo, hi = float(np.min(arr)), float(np.max(arr))
        arr = ((arr - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
    return arr


def thumbnail(image: np.ndarray, side: int = THUMB) -> np.ndarray:
    """Zero-mean, unit-norm grey thumbnail (side x side) for correlation checks."""
    small = np.asarray(Image.fromarray(_grey_uint8(image)).resize((side, side), Image.BILINEAR),
                       dtype=np.float64).ravel()
    small -= small.mean()
    norm = np.linalg.norm(small)
    return small / norm if norm > 0 else small


@dataclass
class Fingerprints:
    """Per image: perceptual hash (N, 64) bool and thumbnail (N, THUMB**2) for confirmation."""

    hashes: np.ndarray
    thumbs: np.ndarray

    def __len__(self) -> int:
        return len(self.hashes)


def fingerprints(images: Iterable[np.ndarray]) -> Fingerprints:
    """Hashes and thumbnails of the images (2-D grey or H x W x C)."""
    ims = [_grey_uint8(im) for im in images]
    if not ims:
        return Fingerprints(np.zeros((0, 64), bool), np.zeros((0, THUMB * THUMB)))
    return Fingerprints(np.stack([phash(im) for im in ims]), np.stack([thumbnail(im) for im in ims]))


def hash_images(images: Iterable[np.ndarray], **kwargs: Any) -> np.ndarray:
    """(N, bits) bool hashes of the images."""
    hashes = [phash(im, **kwargs) for im in images]
    return np.stack(hashes) if hashes else np.zeros((0, 64), bool)


def hamming(hashes: np.ndarray) -> np.ndarray:
    """(N, N) pairwise Hamming distances of bool hashes."""
    h = np.asarray(hashes, dtype=np.int16)
    return (h[:, None, :] != h[None, :, :]).sum(-1) if len(h) else np.zeros((0, 0), int)


def near_duplicate_pairs(prints: Fingerprints | np.ndarray, ids: Sequence[str],
                         threshold: int = DEFAULT_THRESHOLD,
                         min_correlation: float | None = DEFAULT_MIN_CORRELATION) -> pd.DataFrame:
    """Pairs ``(case_a, case_b, distance, correlation)``: Hamming distance <= ``threshold``
    and (with thumbnails and ``min_correlation`` not None) correlation >= ``min_correlation``.
    Plain hashes (an array) give ``correlation`` NaN and no confirmation."""
    hashes = prints.hashes if isinstance(prints, Fingerprints) else np.asarray(prints)
    if len(ids) != len(hashes):
        raise ValueError(f"{len(ids)} ids for {len(hashes)} hashes")
    dist = hamming(hashes)
    a, b = np.nonzero(np.triu(dist <= threshold, k=1))
    corr = np.full(len(a), np.nan)
    if isinstance(prints, Fingerprints):
        corr = np.einsum("ij,ij->i", prints.thumbs[a], prints.thumbs[b])
        if min_correlation is not None:
            keep = corr >= min_correlation
            a, b, corr = a[keep], b[keep], corr[keep]
    return pd.DataFrame({"case_a": [ids[i] for i in a], "case_b": [ids[j] for j in b],
                         "distance": dist[a, b].astype(int), "correlation": np.round(corr, 4)})


@dataclass
class LeakageAudit:
    """Near-duplicate pairs with their classes and splits.

    Attributes:
        pairs: ``case_a, case_b, distance, correlation, class_a, class_b, split_a, split_b,
            cross_split, cross_class``.
        threshold: Hamming threshold used (bits of 64); ``min_correlation`` the confirmation.
        n_cases: how many images were hashed.
        eval_split: the split whose metrics are reported (``"test"``).
        ids: the cases hashed.
    """

    pairs: pd.DataFrame
    threshold: int
    n_cases: int
    min_correlation: float | None = DEFAULT_MIN_CORRELATION
    eval_split: str = "test"
    ids: tuple[str, ...] = ()

    def leaked(self, against: Sequence[str] | None = None) -> set[str]:
        """Evaluation cases with a near duplicate in another split (default: any other)."""
        p = self.pairs[self.pairs["cross_split"]]
        out: set[str] = set()
        for a, b, sa, sb in zip(p["case_a"], p["case_b"], p["split_a"], p["split_b"]):
            for case, mine, other in ((a, sa, sb), (b, sb, sa)):
                if mine == self.eval_split and (against is None or other in against):
                    out.add(case)
        return out

    def summary(self) -> pd.DataFrame:
        """Counts: pairs found, crossing splits (by pair of splits), crossing classes, leaked
        evaluation cases."""
        p = self.pairs
        rows = [{"what": "images hashed", "count": self.n_cases},
                {"what": f"near-duplicate pairs (Hamming <= {self.threshold} of 64 bits, correlation "
                 f">= {self.min_correlation})", "count": len(p)},
                {"what": "pairs within one split", "count": int((~p["cross_split"]).sum())}]
        cross = p[p["cross_split"]]
        for (sa, sb), n in cross.groupby([cross[["split_a", "split_b"]].min(axis=1),
                                          cross[["split_a", "split_b"]].max(axis=1)]).size().items():
            rows.append({"what": f"pairs across splits {sa} / {sb}", "count": int(n)})
        rows.append({"what": "pairs across classes", "count": int(p["cross_class"].sum())})
        rows.append({"what": f"{self.eval_split} cases with a near duplicate in another split",
                     "count": len(self.leaked())})
        return pd.DataFrame(rows)


def audit(prints: Fingerprints | np.ndarray, ids: Sequence[str], labels: Sequence[str],
          splits: Sequence[str], threshold: int = DEFAULT_THRESHOLD,
          min_correlation: float | None = DEFAULT_MIN_CORRELATION,
          eval_split: str = "test") -> LeakageAudit:
    """Near duplicates of a classification dataset, across splits and across classes.

    Args:
        prints: :func:`fingerprints` of the images (or bare hashes, unconfirmed).
        ids, labels, splits: per image its case id, class name and split name.
        threshold, min_correlation: see :func:`near_duplicate_pairs`.
    """
    if not len(ids) == len(labels) == len(splits) == len(prints):
        raise ValueError("prints, ids, labels and splits must have one entry per image")
    pairs = near_duplicate_pairs(prints, list(ids), threshold, min_correlation)
    cls = dict(zip(ids, labels))
    part = dict(zip(ids, splits))
    pairs["class_a"] = pairs["case_a"].map(cls)
    pairs["class_b"] = pairs["case_b"].map(cls)
    pairs["split_a"] = pairs["case_a"].map(part)
    pairs["split_b"] = pairs["case_b"].map(part)
    pairs["cross_split"] = pairs["split_a"] != pairs["split_b"]
    pairs["cross_class"] = pairs["class_a"] != pairs["class_b"]
    return LeakageAudit(pairs, int(threshold), len(ids), min_correlation, eval_split,
                        tuple(map(str, ids)))


def with_and_without(audit_: LeakageAudit, eval_ids: Sequence[str],
                     metrics: Mapping[str, Callable[[Sequence[str]], float]]) -> pd.DataFrame:
    """Each metric on every evaluation case and on those without a near duplicate elsewhere.

    Args:
        eval_ids: the evaluation cases the metrics were computed on.
        metrics: name -> function of a list of case ids returning the metric on those cases.

    Returns:
        DataFrame ``metric, all cases, n, without near duplicates, n clean, change``.
    """
    leaked = audit_.leaked()
    clean = [c for c in eval_ids if c not in leaked]
    rows = []
    for name, fn in metrics.items():
        full = float(fn(list(eval_ids)))
        kept = float(fn(clean)) if clean else float("nan")
        rows.append({"metric": name, "all cases": full, "n": len(eval_ids),
                     "without near duplicates": kept, "n clean": len(clean), "change": kept - full})
    return pd.DataFrame(rows)


def detection_check(audit_: LeakageAudit, truth: pd.DataFrame) -> dict[str, float]:
    """Recall and precision of the pairs found against known duplicate pairs (phantoms write
    them: ``case_a, case_b``); only pairs whose cases were both hashed count."""
    found = {frozenset(p) for p in zip(audit_.pairs["case_a"], audit_.pairs["case_b"])}
    hashed = set(audit_.ids)
    known = {frozenset(p) for p in zip(truth["case_a"], truth["case_b"])
             if p[0] in hashed and p[1] in hashed}
    tp = len(found & known)
    return {"known_pairs": len(known), "found_pairs": len(found), "true_pairs_found": tp,
            "recall": tp / len(known) if known else float("nan"),
            "precision": tp / len(found) if found else float("nan")}
