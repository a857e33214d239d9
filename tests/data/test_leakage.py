"""The near-duplicate audit: perceptual hash, pairs across splits/classes, metrics without them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainlib.data import leakage


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.normal(0, 1, (8, 8))
        big = np.kron(base, np.ones((16, 16))) + rng.normal(0, 0.05, (128, 128))
        out.append(((big - big.min()) / np.ptp(big) * 255).astype(np.uint8))
    return out


def test_phash_matches_imagehash_algorithm() -> None:
    img = _images(1)[0]
    h = leakage.phash(img)
    assert h.shape == (64,) and h.dtype == bool and 20 < h.sum() < 44
    imagehash = pytest.importorskip("imagehash")
    from PIL import Image

    ref = imagehash.phash(Image.fromarray(img)).hash.ravel()
    assert (ref != h).sum() <= 2


def test_audit_finds_exact_and_near_copies_across_splits_and_classes() -> None:
    ims = _images(6)
    ims.append(ims[0].copy())                                            # exact copy of 0
    ims.append(np.clip(ims[1].astype(int) + 6, 0, 255).astype(np.uint8))  # near copy of 1
    ids = [f"c{i}" for i in range(8)]
    labels = ["a", "a", "b", "b", "a", "b", "b", "a"]
    splits = ["train", "train", "train", "val", "test", "test", "test", "test"]
    audit = leakage.audit(leakage.fingerprints(ims), ids, labels, splits)
    pairs = {frozenset(p) for p in zip(audit.pairs.case_a, audit.pairs.case_b)}
    assert pairs == {frozenset(("c0", "c6")), frozenset(("c1", "c7"))}
    row = audit.pairs.set_index("case_b").loc["c6"]
    assert row.distance == 0 and row.cross_split and row.cross_class
    assert audit.leaked() == {"c6", "c7"}
    summary = audit.summary().set_index("what")["count"]
    assert summary["pairs across classes"] == 1
    assert summary["test cases with a near duplicate in another split"] == 2
    table = leakage.with_and_without(audit, ["c4", "c5", "c6", "c7"], {"n": len})
    assert table.loc[0, "all cases"] == 4 and table.loc[0, "without near duplicates"] == 2
    check = leakage.detection_check(audit, pd.DataFrame({"case_a": ["c0", "c1"], "case_b": ["c6", "c7"]}))
    assert check["recall"] == 1.0 and check["precision"] == 1.0


def test_correlation_rejects_lookalikes() -> None:
    a = _images(1, seed=1)[0]
    b = np.flipud(a)  # same hash statistics nowhere near; low correlation
    prints = leakage.fingerprints([a, b])
    pairs = leakage.near_duplicate_pairs(prints, ["a", "b"], threshold=64, min_correlation=0.9)
    assert pairs.empty
    pairs = leakage.near_duplicate_pairs(prints, ["a", "b"], threshold=64, min_correlation=None)
    assert len(pairs) == 1
