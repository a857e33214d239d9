"""yin2024 image-set cache: an .npz read without pickle; a planted pickle is refused, never run."""
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from brainlib.io import Skipped
from brainlib.papers.yin2024 import data as yin_data
from brainlib.papers.yin2024.cache import load_image_set, save_image_set
from brainlib.papers.yin2024.data import ImageSet


def _small_set() -> ImageSet:
    rng = np.random.default_rng(0)
    masks = [np.zeros((0, 8, 8), bool), rng.random((2, 8, 8)) > 0.5, rng.random((1, 8, 8)) > 0.5]
    return ImageSet("cq500", ("normal", "a", "b"), rng.random((3, 8, 8)).astype(np.float32),
                    np.array([0, 1, 2]), ["s1/z001", "s1/z002", "s2/z003"], np.array(["s1", "s1", "s2"]),
                    np.array(["train", "val", "test"]), masks,
                    [np.zeros(0, np.int64), np.array([1, 2]), np.array([2])], {"note": "x"})


class _Payload:
    """Unpickling this touches a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    s = _small_set()
    skipped = [Skipped("a/b.dcm", "UnreadableDicomError", "truncated")]
    save_image_set(tmp_path / "c.npz", s, "/data/cq500", True, skipped)
    fields, (root, synthetic, sk) = load_image_set(tmp_path / "c.npz")
    back = ImageSet(**fields)
    assert back.name == s.name and back.classes == s.classes and back.ids == s.ids
    np.testing.assert_array_equal(back.images, s.images)
    for a, b in zip(back.masks, s.masks):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(back.inst_labels, s.inst_labels):
        np.testing.assert_array_equal(a, b)
    assert back.split.tolist() == s.split.tolist() and back.groups.tolist() == s.groups.tolist()
    assert back.extra == s.extra and (root, synthetic, sk) == ("/data/cq500", True, skipped)


def test_planted_pickle_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "c.npz"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="not a yin2024 image-set cache"):
        load_image_set(path)
    assert not marker.exists()


def test_load_set_rebuilds_over_a_planted_pickle(tmp_path: Path, monkeypatch) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "cq500-abc.npz"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    built = _small_set()
    calls = []
    monkeypatch.setattr(yin_data, "_cache_file", lambda exp, name: path)
    monkeypatch.setattr(yin_data, "load_cq500", lambda exp: calls.append(1) or
                        (built, SimpleNamespace(root="/r", synthetic=True, skipped=[])))
    with pytest.warns(RuntimeWarning, match="not a yin2024 image-set cache"):
        data, source = yin_data.load_set(None, "cq500")
    assert not marker.exists() and calls == [1] and data.ids == built.ids
    again, _ = yin_data.load_set(None, "cq500")  # now a real cache: read, not rebuilt
    assert calls == [1] and again.ids == built.ids and source.root == "/r"


def test_cache_file_is_npz() -> None:
    assert "import pickle" not in Path(yin_data.__file__).read_text()
