"""The header-index cache round-trips exactly and never unpickles (issue 14)."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from brainlib.data.base import scan_cached
from brainlib.data.index_store import load_index, save_index
from brainlib.io import scan_folder
from brainlib.io.testing import write_ct_slice


def _tree(root):
    for k in range(3):
        write_ct_slice(root / f"s{k}.dcm", np.zeros((8, 8), np.float32), instance_number=k + 1,
                       series_description="CT <b>plain</b>", windows=((40.0, 80.0), (600.0, 2800.0)))
    write_ct_slice(root / "mr.dcm", np.zeros((8, 8), np.float32), modality="MR")  # skipped
    (root / "empty.dcm").write_bytes(b"")  # skipped
    return root


def test_round_trip_is_exact(tmp_path):
    index, skipped = scan_folder(_tree(tmp_path / "t"))
    index.loc[1, "image_position"] = None  # a file without position
    save_index(tmp_path / "i.npz", index, skipped)
    back, back_skipped = load_index(tmp_path / "i.npz")
    pd.testing.assert_frame_equal(back, index, check_dtype=False)
    assert [type(v) for v in back["pixel_spacing"]] == [tuple] * 3 and back.loc[1, "image_position"] is None
    assert back_skipped == skipped and len(skipped) == 2
    empty, none = load_index(save_index(tmp_path / "e.npz", index.iloc[:0], []))
    assert len(empty) == 0 and list(empty.columns) == list(index.columns) and none == []


def test_a_planted_pickle_is_never_loaded(tmp_path):
    (tmp_path / "evil.npz").write_bytes(pickle.dumps({"columns": ["x"]}))
    with pytest.raises(ValueError, match="not a brainlib index"):
        load_index(tmp_path / "evil.npz")
    obj = tmp_path / "obj.npz"
    np.savez(obj, columns=np.array([object()], dtype=object))  # object arrays need pickle
    with pytest.raises(ValueError):
        load_index(obj)


def test_scan_cached_reuses_the_npz(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    root = _tree(tmp_path / "t")
    first = scan_cached(root)
    files = list((tmp_path / "cache").rglob("*.npz"))
    assert len(files) == 1 and not list((tmp_path / "cache").rglob("*.pkl"))
    again = scan_cached(root)
    pd.testing.assert_frame_equal(again[0], first[0], check_dtype=False)
    assert again[1] == first[1]
