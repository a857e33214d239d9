"""The phantom mark: writers mark every file, loaders read it back (`dataset.synthetic`).

A phantom tree passed as `--data-root` must still be reported as synthetic; a tree whose
files carry a real vendor is real; a tree mixing both is refused (`MixedDataError`).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

import brainlib.data.synth.writers as writers
from brainlib.data import BaseDataset, CQ500Dataset, DatasetError, MixedDataError, RSNADataset
from brainlib.data.base import phantom_paths
from brainlib.data.synth import (
    GENERATOR_VERSION, MARK_VERSION, PHANTOM_MANUFACTURER, SYNTHETIC_JSON, ensure_phantoms, is_phantom_header,
    phantom_key, phantom_provenance, read_synthetic_json, write_cq500, write_rsna, write_synthetic_json,
)
from brainlib.data.synth.marks import HEAD_CT_GENERATOR, is_phantom_manufacturer
from brainlib.io import scan_folder

SIZE, N_STUDIES, SEED = 32, 2, 4
VENDOR = "GE MEDICAL SYSTEMS"


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("marked")
    return {"rsna": write_rsna(base / "rsna", N_STUDIES, SEED, SIZE),
            "cq500": write_cq500(base / "cq500", N_STUDIES, SEED, SIZE)}


def _copy(tree: Path, dest: Path) -> Path:
    shutil.copytree(tree, dest)
    return dest


def _set_manufacturer(paths: list[Path], value: str) -> None:
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.Manufacturer = value
        ds.save_as(p)


def _load(layout: str, root: Path, **kw) -> BaseDataset:
    kw.setdefault("cache", False)
    kw.setdefault("progress", False)
    return RSNADataset(root, size=16, **kw) if layout == "rsna" else CQ500Dataset(root, size=16, **kw)


# ----------------------------------------------------------------------------- writers
@pytest.mark.parametrize("layout", ["rsna", "cq500"])
def test_every_phantom_file_carries_the_mark(trees, layout):
    files = sorted(trees[layout].rglob("*.dcm"))
    assert files
    for p in files:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        assert ds.Manufacturer == PHANTOM_MANUFACTURER and is_phantom_header(ds)
        prov = phantom_provenance(ds)
        assert prov["generator"] == HEAD_CT_GENERATOR == ds.ManufacturerModelName
        assert prov["seed"] == SEED and ds.DeviceSerialNumber == str(SEED)
        assert f"head_ct {GENERATOR_VERSION}" in prov["software_versions"]
        assert "not patient data" in ds.ImageComments and f"dataset seed {SEED}" in ds.ImageComments
    params = json.loads((trees[layout] / "_phantom_truth" / "params.json").read_text())
    assert params["mark"] == PHANTOM_MANUFACTURER and params["mark_version"] == MARK_VERSION


def test_mark_leaves_pixels_and_labels_byte_identical(trees, tmp_path, monkeypatch):
    # the same tree written without the mark: only the header attributes differ
    monkeypatch.setattr(writers, "_mark", lambda *a, **k: {})
    for layout, write in (("rsna", write_rsna), ("cq500", write_cq500)):
        plain = write(tmp_path / layout, N_STUDIES, SEED, SIZE)
        marked = trees[layout]
        names = sorted(str(p.relative_to(plain)) for p in plain.rglob("*") if p.is_file())
        assert names == sorted(str(p.relative_to(marked)) for p in marked.rglob("*") if p.is_file())
        for name in names:
            a, b = plain / name, marked / name
            if name.endswith(".dcm"):
                da, db = pydicom.dcmread(a), pydicom.dcmread(b)
                assert "Manufacturer" not in da and db.Manufacturer == PHANTOM_MANUFACTURER
                assert da.PixelData == db.PixelData and da.RescaleIntercept == db.RescaleIntercept
            elif not name.endswith("params.json"):
                assert a.read_bytes() == b.read_bytes(), name


# ----------------------------------------------------------------------------- loaders
def test_rsna_phantom_is_synthetic_in_both_views(trees):
    for view in ("slice", "series"):
        ds = _load("rsna", trees["rsna"], view=view)
        assert len(ds) and ds.synthetic is True and ds.root == trees["rsna"]
        assert ds.subset([0]).synthetic is True


def test_cq500_phantom_is_synthetic(trees):
    ds = _load("cq500", trees["cq500"])
    assert len(ds) == N_STUDIES and ds.synthetic is True and ds.root == trees["cq500"]


@pytest.mark.parametrize("layout", ["rsna", "cq500"])
def test_real_vendor_on_every_file_is_real_even_through_the_index_cache(trees, layout, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    root = _copy(trees[layout], tmp_path / layout)
    assert _load(layout, root, cache=True).synthetic is True  # header index now cached
    _set_manufacturer(sorted(root.rglob("*.dcm")), VENDOR)
    ds = _load(layout, root, cache=True)  # files changed on disk: rescanned
    assert len(ds) and ds.synthetic is False


@pytest.mark.parametrize("layout", ["rsna", "cq500"])
def test_mixed_tree_is_refused_with_a_clear_message(trees, layout, tmp_path):
    root = _copy(trees[layout], tmp_path / layout)
    ds = _load(layout, root)
    used = [p for paths in ds.metadata["paths"] for p in paths]
    n_used = len(set(used))
    _set_manufacturer([Path(p) for p in used[:2]], VENDOR)
    ds = _load(layout, root)
    with pytest.raises(MixedDataError) as info:
        ds.synthetic
    msg = str(info.value)
    assert isinstance(info.value, DatasetError)
    assert msg.startswith(f"{root}: mixes brainlib phantom files and real ones")
    assert f"{n_used - 2} of {n_used} file(s) used carry the phantom mark" in msg
    assert ", 2 do not" in msg
    assert f"unmarked {used[0]}" in msg or f"unmarked {used[1]}" in msg
    marked_example = msg.split("e.g. marked ")[1].split(",")[0]
    assert marked_example in used[2:]
    # rows made only of marked files are still phantoms
    clean = [i for i, paths in enumerate(ds.metadata["paths"]) if not set(paths) & set(used[:2])]
    if clean:
        assert ds.subset(clean).synthetic is True


def test_cq500_judges_the_files_it_uses(trees, tmp_path):
    # an unused (bone) series with a real vendor does not change the verdict
    root = _copy(trees["cq500"], tmp_path / "cq500")
    bone = [p for p in root.rglob("*.dcm") if "bone" in p.parent.name.lower()]
    if not bone:
        pytest.skip("this seed drew no bone series")
    _set_manufacturer(bone, VENDOR)
    assert _load("cq500", root).synthetic is True


def test_old_index_without_the_column_reads_as_unmarked(trees):
    index, _ = scan_folder(trees["rsna"] / "stage_2_train", "*.dcm")
    assert phantom_paths(index) == frozenset(index["path"])
    assert phantom_paths(index.drop(columns=["manufacturer"])) == frozenset()
    assert is_phantom_manufacturer("BRAINLIB PHANTOM\x00") and not is_phantom_manufacturer(None)


# ----------------------------------------------------------------------------- SYNTHETIC.json
def test_synthetic_json_round_trip(tmp_path):
    assert read_synthetic_json(tmp_path) is None
    path = write_synthetic_json(tmp_path, "brainlib.data.synth.breast_us", "1", 7, layout="busi",
                                n_images=12, size=64)
    assert path == tmp_path / SYNTHETIC_JSON
    back = read_synthetic_json(tmp_path)
    assert back["synthetic"] is True and back["mark"] == PHANTOM_MANUFACTURER
    assert (back["generator"], back["version"], back["seed"]) == ("brainlib.data.synth.breast_us", "1", 7)
    assert (back["layout"], back["n_images"], back["size"]) == ("busi", 12, 64)
    with pytest.raises(ValueError, match="override"):
        write_synthetic_json(tmp_path, "g", "1", 0, synthetic=False)
    path.write_text(json.dumps({"synthetic": False}))
    with pytest.raises(ValueError, match="not a brainlib synthetic-data mark"):
        read_synthetic_json(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        read_synthetic_json(tmp_path)


def test_layouts_without_file_marks_read_synthetic_json(tmp_path):
    meta = pd.DataFrame({"case_id": ["a"], "paths": [(str(tmp_path / "a.png"),)]})
    make = lambda root: BaseDataset(labels=np.zeros((1, 1)), metadata=meta, classes=("x",),
                                    windows=None, size=None, root=root)
    assert make(tmp_path).synthetic is False and make(None).synthetic is False
    write_synthetic_json(tmp_path, "brainlib.data.synth.breast_us", "1", 0)
    ds = make(tmp_path)
    assert ds.root == tmp_path and ds.synthetic is True
    (tmp_path / SYNTHETIC_JSON).write_text("[]")
    with pytest.raises(DatasetError, match="SYNTHETIC.json"):
        make(tmp_path).synthetic


# ----------------------------------------------------------------------------- cache
def test_cached_phantoms_written_before_the_mark_are_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path))
    key = phantom_key("rsna", 1, 0, SIZE, 0.5)
    assert key.endswith(f"-m{MARK_VERSION}")
    root = ensure_phantoms("rsna", n_studies=1, seed=0, size=SIZE, difficulty=0.5)
    assert root.name == key and _load("rsna", root).synthetic is True
    # a complete tree at the key but written without the mark (no mark_version) is replaced
    params_path = root / "_phantom_truth" / "params.json"
    params = json.loads(params_path.read_text())
    del params["mark_version"]
    params_path.write_text(json.dumps(params))
    _set_manufacturer(sorted(root.rglob("*.dcm")), "")
    assert ensure_phantoms("rsna", n_studies=1, seed=0, size=SIZE, difficulty=0.5) == root
    assert json.loads(params_path.read_text())["mark_version"] == MARK_VERSION
    assert _load("rsna", root).synthetic is True
