"""Dataset loaders (brainlib.data): RSNA and CQ500 layouts, one base class."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainlib.data import CQ500Dataset, DatasetError, RSNADataset, collate_sequences
from brainlib.data.classes import CQ500_CLASSES, CQ500_HEADER, CQ500_READ_FIELDS, RSNA_CLASSES
from brainlib.data.cq500 import majority, read_reads_csv
from brainlib.data.rsna import read_rsna_csv
from brainlib.io.testing import uid_from, write_ct_slice

torch.set_num_threads(1)
SIZE = 16


def _hu(seed: int, n: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-100, 200, size=(n, n)).astype(np.float32)


# ----------------------------------------------------------------------------- RSNA
def _write_rsna_csv(path: Path, rows: list[tuple[str, object]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "Label"])
        w.writerows(rows)


def _rsna_rows(image: str, positives: set[str]) -> list[tuple[str, int]]:
    subs = [c for c in RSNA_CLASSES if c != "any"]
    rows = [(f"{image}_{s}", int(s in positives)) for s in subs]
    return rows + [(f"{image}_any", int(bool(positives)))]


def test_rsna_csv_quirks(tmp_path: Path) -> None:
    path = tmp_path / "stage_2_train.csv"
    rows = _rsna_rows("ID_a1", {"subdural"}) + _rsna_rows("ID_b2", set())
    rows += [("ID_a1_subdural", 1), ("ID_a1_any", 1)]          # exact duplicates: dropped
    rows += [("ID_c3_epidural", 1), ("ID_c3_any", 1)]          # only two subtypes known
    _write_rsna_csv(path, rows)
    df = read_rsna_csv(path)
    assert list(df.columns) == list(RSNA_CLASSES)
    assert list(df.index) == ["ID_a1", "ID_b2", "ID_c3"]       # split on the LAST underscore
    assert df.loc["ID_a1", "subdural"] == 1 and df.loc["ID_a1", "any"] == 1
    assert df.loc["ID_a1", "epidural"] == 0
    assert df.loc["ID_b2"].sum() == 0
    assert df.loc["ID_c3", "epidural"] == 1 and np.isnan(df.loc["ID_c3", "subdural"])


def test_rsna_csv_conflicting_duplicate_names_file_and_id(tmp_path: Path) -> None:
    path = tmp_path / "stage_2_train.csv"
    _write_rsna_csv(path, _rsna_rows("ID_a1", set()) + [("ID_a1_subdural", 1)])
    with pytest.raises(DatasetError, match=r"stage_2_train\.csv.*ID_a1_subdural"):
        read_rsna_csv(path)


@pytest.mark.parametrize("content, pattern", [
    ("Image,Label\nID_a_any,1\n", "header"),
    ("ID,Label\nID_a_brain,1\n", "ID_a_brain"),
    ("ID,Label\nID_a_any,2\n", "label"),
])
def test_rsna_csv_bad_content(tmp_path: Path, content: str, pattern: str) -> None:
    path = tmp_path / "stage_2_train.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=pattern) as info:
        read_rsna_csv(path)
    assert str(path) in str(info.value)


def _make_rsna(root: Path) -> dict:
    """Two studies x 4 slices, instance numbers shuffled against positions; one image in the
    CSV is missing on disk, one file is broken (truncated pixel data)."""
    img_dir = root / "stage_2_train"
    img_dir.mkdir(parents=True)
    csv_rows: list[tuple[str, int]] = []
    truth: dict[str, set[str]] = {}
    order = {}
    for st in range(2):
        study = uid_from("study", st)
        series = uid_from("series", st)
        for k, z in enumerate([3, 0, 2, 1]):         # file order != slice order
            image = f"ID_s{st}k{k}"
            pos = {"subdural"} if (st == 0 and z in (1, 2)) else set()
            if st == 1 and z == 3:
                pos = {"epidural", "intraventricular"}
            truth[image] = pos
            order[image] = (st, z)
            csv_rows += _rsna_rows(image, pos)
            write_ct_slice(img_dir / f"{image}.dcm", _hu(10 * st + k), study_uid=study,
                           series_uid=series, sop_uid=uid_from("sop", st, k),
                           instance_number=k + 1, position=(0.0, 0.0, 5.0 * z),
                           style="rsna12" if k == 0 else "int16")
    csv_rows += _rsna_rows("ID_missing", {"subdural"})
    csv_rows += _rsna_rows("ID_broken", set())
    write_ct_slice(img_dir / "ID_broken.dcm", _hu(99), study_uid=uid_from("study", 0),
                   series_uid=uid_from("series", 0), instance_number=9, position=(0, 0, 40.0))
    data = (img_dir / "ID_broken.dcm").read_bytes()
    (img_dir / "ID_broken.dcm").write_bytes(data[:-300])
    csv_rows += csv_rows[:3]                            # duplicate rows
    _write_rsna_csv(root / "stage_2_train.csv", csv_rows)
    return {"truth": truth, "order": order}


@pytest.mark.parametrize("cache", [False, True])
def test_rsna_slice_view(tmp_path: Path, cache: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    info = _make_rsna(tmp_path / "rsna")
    ds = RSNADataset(tmp_path / "rsna", view="slice", size=SIZE, cache=cache)
    img_dir = tmp_path / "rsna" / "stage_2_train"
    assert sorted((Path(s.path).name, type(s).__name__) for s in ds.skipped) == [
        ("ID_broken.dcm", "Skipped"), ("ID_missing.dcm", "Skipped")]
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert "not on disk" in reasons["ID_missing.dcm"]
    assert "truncated" in reasons["ID_broken.dcm"]
    assert {str(s.path) for s in ds.skipped} == {str(img_dir / "ID_missing.dcm"),
                                                 str(img_dir / "ID_broken.dcm")}
    assert len(ds) == 8 and ds.classes == RSNA_CLASSES
    assert ds.labels.dtype == np.float32 and ds.labels.shape == (8, 6)
    frame = ds.label_frame()
    for image, pos in info["truth"].items():
        expect = [float(bool(pos))] + [float(c in pos) for c in RSNA_CLASSES[1:]]
        assert frame.loc[image].tolist() == expect
    # rows ordered by position inside each series
    for _, g in ds.metadata.groupby("series_uid"):
        assert [info["order"][i][1] for i in g["case_id"]] == [0, 1, 2, 3]
    item = ds[0]
    assert item["x"].shape == (3, SIZE, SIZE) and item["x"].dtype == torch.float32
    assert 0.0 <= float(item["x"].min()) and float(item["x"].max()) <= 1.0
    assert item["id"] == ds.metadata.case_id[0]
    assert torch.equal(item["y"], torch.from_numpy(ds.labels[0]))
    # folds: subsets keep labels and metadata aligned; groups are studies
    sub = ds.subset([5, 1])
    assert sub.ids == [ds.ids[5], ds.ids[1]] and np.array_equal(sub.labels, ds.labels[[5, 1]])
    assert len(set(ds.groups)) == 2
    assert len(ds.filter(lambda m: m.slice_index == 0)) == 2


def test_rsna_hu_view_matches_read_hu(tmp_path: Path) -> None:
    from brainlib.io import read_hu

    _make_rsna(tmp_path / "rsna")
    ds = RSNADataset(tmp_path / "rsna", windows=None, size=None, cache=False)
    p = ds.metadata.paths[0][0]
    assert torch.equal(ds[0]["x"][0], torch.from_numpy(read_hu(p)))


@pytest.mark.parametrize("cache", [False, True])
def test_rsna_series_view(tmp_path: Path, cache: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    info = _make_rsna(tmp_path / "rsna")
    ds = RSNADataset(tmp_path / "rsna", view="series", size=SIZE, cache=cache)
    assert len(ds) == 2 and len(ds.skipped) == 2
    for i in range(2):
        slice_ids = ds.metadata.slice_ids[i]
        assert [info["order"][s][1] for s in slice_ids] == [0, 1, 2, 3]
        sl = ds.slice_labels(i)
        assert sl.shape == (4, 6)
        np.testing.assert_array_equal(ds.labels[i], sl.max(axis=0))
    lab = ds.label_frame()
    s0 = ds.metadata.series_uid[ds.metadata.study_uid == uid_from("study", 0)].iat[0]
    assert lab.loc[s0, "subdural"] == 1 and lab.loc[s0, "epidural"] == 0
    item = ds[0]
    assert item["x"].shape == (4, 3, SIZE, SIZE)
    assert item["slice_labels"].shape == (4, 6)
    batch = collate_sequences([ds[0], ds[1]])
    assert batch["x"].shape == (2, 4, 3, SIZE, SIZE) and batch["mask"].all()
    assert batch["slice_labels"].shape == (2, 4, 6)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=ds.collate_fn)
    assert next(iter(loader))["id"] == ds.ids
    # fixed-length sequences by even resampling
    ds3 = ds.subset([0])
    ds3.seq_len = 3
    assert ds3[0]["x"].shape == (3, 3, SIZE, SIZE) and ds3[0]["slice_labels"].shape == (3, 6)


def test_rsna_max_studies_is_deterministic(tmp_path: Path) -> None:
    _make_rsna(tmp_path / "rsna")
    a = RSNADataset(tmp_path / "rsna", max_studies=1, seed=3, cache=False)
    b = RSNADataset(tmp_path / "rsna", max_studies=1, seed=3, cache=False)
    assert len(a) == 4 and a.ids == b.ids
    assert a.metadata.study_uid.nunique() == 1


# ----------------------------------------------------------------------------- CQ500
def _reads_row(name: str, votes: list[dict[str, int]]) -> list[object]:
    row: list[object] = [name, "B1"]
    for v in votes:
        row += [v.get(f, 0) for f in CQ500_READ_FIELDS]
    return row


def _write_reads(path: Path, rows: list[list[object]], header=CQ500_HEADER) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _write_series(folder: Path, patient: int, number: int, desc: str, thickness: float,
                  zs: list[int]) -> list[Path]:
    out = []
    rng = np.random.default_rng(number)
    names = rng.permutation(len(zs))                        # file names not in slice order
    for k, z in enumerate(zs):
        out.append(write_ct_slice(
            folder / f"CT{names[k]:06d}.dcm", _hu(100 * patient + k), patient_id=f"P{patient}",
            series_number=number, instance_number=k + 1, series_description=desc,
            slice_thickness=thickness, position=(0.0, 0.0, thickness * z)))
    return out


def _make_cq500(root: Path) -> Path:
    p1 = root / "batch1" / "CQ500CT1 CQ500CT1" / "Unknown Study"
    _write_series(p1 / "CT PLAIN THIN", 1, 2, "PLAIN THIN", 2.5, [0, 1, 2, 4, 5, 6])  # gap
    _write_series(p1 / "CT BONE", 1, 3, "BONE", 2.5, list(range(8)))
    _write_series(p1 / "CT POST CONTRAST", 1, 4, "POST CONTRAST", 1.0, list(range(12)))
    _write_series(p1 / "CT PLAIN", 1, 1, "PLAIN", 5.0, [3, 0, 2, 1])
    _write_series(p1 / "CT 5mm", 1, 5, "5mm", 5.0, [0, 1])                              # too short
    p2 = root / "CQ500CT2 CQ500CT2" / "Unknown Study"
    _write_series(p2 / "CT BONE", 2, 1, "BONE", 5.0, list(range(4)))
    p5 = root / "batch2" / "CQ500CT5 CQ500CT5" / "Unknown Study"
    _write_series(p5 / "CT Plain", 5, 1, "Plain", 5.0, list(range(5)))
    thin = _write_series(p5 / "CT Thin", 5, 2, "Thin", 2.0, list(range(6)))
    thin[2].write_bytes(b"")                                # broken: thin becomes incomplete
    vote1 = [{"ICH": 1, "SDH": 1}, {"ICH": 1, "SDH": 1, "EDH": 1}, {"ICH": 1}]
    vote5 = [{"MassEffect": 1}, {}, {"MassEffect": 1, "MidlineShift": 1}]
    _write_reads(root / "reads.csv", [
        _reads_row("CQ500-CT-1", vote1), _reads_row("CQ500-CT-2", vote1),
        _reads_row("CQ500-CT-5", vote5), _reads_row("CQ500-CT-7", vote5)])
    return thin[2]


def test_reads_header_mismatch_names_file(tmp_path: Path) -> None:
    header = list(CQ500_HEADER)
    header[5] = "R1:SDH "  # trailing-space variants are tolerated ...
    _write_reads(tmp_path / "reads.csv", [_reads_row("CQ500-CT-1", [{}] * 3)], header)
    read_reads_csv(tmp_path / "reads.csv")
    header[5] = "R1:subdural"  # ... a different name is not
    _write_reads(tmp_path / "reads.csv", [_reads_row("CQ500-CT-1", [{}] * 3)], header)
    with pytest.raises(DatasetError, match=r"reads\.csv.*R1:subdural"):
        read_reads_csv(tmp_path / "reads.csv")
    _write_reads(tmp_path / "reads.csv", [], header=list(CQ500_HEADER)[:-1])
    with pytest.raises(DatasetError, match="43 columns"):
        CQ500Dataset(tmp_path, cache=False)


def test_majority_votes() -> None:
    votes = np.array([[[1, 0, 1], [1, 0, np.nan], [0, 0, np.nan]]], dtype=np.float32)
    # class0: 1,1,0 -> 1; class1: 0,0,0 -> 0; class2: 1 vs NaN,NaN -> 1 (only vote)
    np.testing.assert_array_equal(majority(votes)[0], [1, 0, 1])
    tie = np.array([[[1], [0], [np.nan]]], dtype=np.float32)
    assert np.isnan(majority(tie)[0, 0])


@pytest.mark.parametrize("cache", [False, True])
def test_cq500_series_choice_and_majority(tmp_path: Path, cache: bool,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cq500"
    broken = _make_cq500(root)
    ds = CQ500Dataset(root, size=SIZE, cache=cache)
    assert ds.ids == ["CQ500-CT-1", "CQ500-CT-5"]
    m = ds.metadata.set_index("case_id")
    assert Path(m.at["CQ500-CT-1", "series_dir"]).name == "CT PLAIN"
    assert m.at["CQ500-CT-1", "n_slices"] == 4
    cands = " | ".join(m.at["CQ500-CT-1", "candidates"])
    assert "CT BONE" in cands and "bone" in cands and "contrast" in cands
    assert "missing position" in cands and "only 2 slices" in cands
    assert Path(m.at["CQ500-CT-5", "series_dir"]).name == "CT Plain"
    assert "unreadable" in " | ".join(m.at["CQ500-CT-5", "candidates"])
    # slices ordered by position although file names are shuffled
    assert list(m.at["CQ500-CT-1", "positions"]) == [0.0, 5.0, 10.0, 15.0]
    lab = ds.label_frame()
    assert lab.loc["CQ500-CT-1", "ICH"] == 1 and lab.loc["CQ500-CT-1", "SDH"] == 1
    assert lab.loc["CQ500-CT-1", "EDH"] == 0          # 1 of 3 readers
    assert lab.loc["CQ500-CT-5", "MassEffect"] == 1 and lab.loc["CQ500-CT-5", "MidlineShift"] == 0
    assert ds.reader_labels.shape == (2, 3, len(CQ500_CLASSES))
    assert ds.reader_frame("R2").loc["CQ500-CT-1", "EDH"] == 1
    assert m.at["CQ500-CT-1", "agreement"] == pytest.approx(7 / 9)
    agree = ds.reader_agreement()
    assert agree.loc["EDH", "unanimous"] == 0.5
    # skipped: bone-only patient, patient without folder, the zero-byte file
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert len(ds.skipped) == 3
    assert set(reasons) == {"CQ500CT2 CQ500CT2", "CQ500CT7 CQ500CT7", broken.name}
    assert "empty" in reasons[broken.name]
    assert "bone" in reasons["CQ500CT2 CQ500CT2"]
    assert "no folder" in reasons["CQ500CT7 CQ500CT7"]
    item = ds[0]
    assert item["x"].shape == (4, 3, SIZE, SIZE) and item["id"] == "CQ500-CT-1"
    assert item["slice_labels"] is None and item["y"].shape == (len(CQ500_CLASSES),)
    batch = collate_sequences([ds[0], ds[1]])
    assert batch["x"].shape == (2, 5, 3, SIZE, SIZE)
    assert batch["mask"].sum().item() == 9 and batch["slice_labels"] is None
    sub = ds.subset([1])
    assert sub.ids == ["CQ500-CT-5"] and sub.reader_labels.shape[0] == 1


def test_cache_matches_direct_reads_and_index_is_reused(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import brainlib.io as bio

    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    _make_rsna(tmp_path / "rsna")
    cached = RSNADataset(tmp_path / "rsna", size=SIZE, cache=True, progress=False)
    direct = RSNADataset(tmp_path / "rsna", size=SIZE, cache=False, transform=lambda x: x * 2)
    assert cached.ids == direct.ids
    for i in (0, 5):
        torch.testing.assert_close(2 * cached[i]["x"], direct[i]["x"])

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the header index should come from the cache")

    monkeypatch.setattr(bio, "scan_folder", no_scan)
    again = RSNADataset(tmp_path / "rsna", size=SIZE, cache=True, progress=False)
    assert again.ids == cached.ids and len(again.skipped) == 2
    # a changed file invalidates the index
    victim = Path(cached.metadata.paths[0][0])
    victim.write_bytes(victim.read_bytes())
    os.utime(victim, ns=(1, 1))
    with pytest.raises(AssertionError, match="from the cache"):
        RSNADataset(tmp_path / "rsna", size=SIZE, cache=True, progress=False)


def test_dataset_pickles_without_pixel_arrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    _make_rsna(tmp_path / "rsna")
    ds = RSNADataset(tmp_path / "rsna", view="series", size=SIZE, progress=False)
    blob = pickle.dumps(ds)
    back = pickle.loads(blob)
    assert isinstance(back.pixels._caches[0].array, np.memmap)  # reopened, not copied
    assert torch.equal(back[1]["x"], ds[1]["x"]) and back.ids == ds.ids


# ----------------------------------------------------------------------------- phantoms
PHANTOM_STUDIES, PHANTOM_SIZE = 3, 64


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from brainlib.data.synth import write_cq500, write_rsna

    base = tmp_path_factory.mktemp("phantoms")
    return {"rsna": write_rsna(base / "rsna", PHANTOM_STUDIES, 7, PHANTOM_SIZE),
            "cq500": write_cq500(base / "cq500", PHANTOM_STUDIES, 7, PHANTOM_SIZE)}


def test_rsna_phantom_round_trip(phantoms: dict[str, Path]) -> None:
    from brainlib.data.synth import load_truth

    root = phantoms["rsna"]
    truth = load_truth(root)
    tsl = truth.slice_labels.set_index("image_id")
    ds = RSNADataset(root, size=SIZE, cache=False)
    assert ds.skipped == [] and len(ds) == len(tsl)
    pd.testing.assert_frame_equal(
        ds.label_frame().sort_index(), tsl[list(RSNA_CLASSES)].astype(np.float32).sort_index(),
        check_names=False)
    # slices of each series come in the generator's z order
    for _, g in ds.metadata.groupby("series_uid"):
        assert tsl.loc[g["case_id"], "z_index"].tolist() == list(range(len(g)))
    series = RSNADataset(root, view="series", size=SIZE, cache=False)
    assert len(series) == PHANTOM_STUDIES
    tst = truth.study_labels.set_index("series_uid")
    got = series.label_frame()
    np.testing.assert_array_equal(got.to_numpy(), tst.loc[got.index, list(RSNA_CLASSES)].to_numpy())
    for i in range(len(series)):
        ids = list(series.metadata.slice_ids[i])
        np.testing.assert_array_equal(series.slice_labels(i), tsl.loc[ids, list(RSNA_CLASSES)])


def test_cq500_phantom_round_trip(phantoms: dict[str, Path]) -> None:
    from brainlib.data.synth import load_truth

    root = phantoms["cq500"]
    truth = load_truth(root)
    tst = truth.study_labels.set_index("study_id")
    ds = CQ500Dataset(root, size=SIZE, cache=False)
    assert ds.skipped == [] and len(ds) == PHANTOM_STUDIES
    got = ds.label_frame()
    np.testing.assert_array_equal(got.to_numpy(),
                                  tst.loc[got.index, [f"majority:{c}" for c in CQ500_CLASSES]])
    for k, r in enumerate(("R1", "R2", "R3")):
        np.testing.assert_array_equal(ds.reader_labels[:, k],
                                      tst.loc[got.index, [f"{r}:{c}" for c in CQ500_CLASSES]])
    tsl = truth.slice_labels
    for _, row in ds.metadata.iterrows():
        desc = Path(row.series_dir).name
        assert "bone" not in desc.lower() and "contrast" not in desc.lower()
        mine = tsl[(tsl.study_id == row.case_id)]
        plain = mine[~mine.series_description.str.contains("BONE|Bone|CONTRAST")]
        thinnest = plain.groupby("series_description").size().idxmax()  # most slices = thinnest
        assert row.series_description == thinnest
        # the chosen series in the generator's z order although file names are shuffled
        chosen = mine[mine.series_description == thinnest].sort_values("z_index")
        assert [str(root / p) for p in chosen.path] == list(row.paths)


def test_window_names_and_hu_through_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    _make_rsna(tmp_path / "rsna")
    one = RSNADataset(tmp_path / "rsna", windows=("brain",), size=SIZE, progress=False)
    assert one[0]["x"].shape == (1, SIZE, SIZE) and one.pixels.windows[0] == (40.0, 80.0)
    hu = RSNADataset(tmp_path / "rsna", windows=None, size=SIZE, progress=False)
    hu_direct = RSNADataset(tmp_path / "rsna", windows=None, size=SIZE, cache=False)
    x = hu[0]["x"]
    assert x.shape == (1, SIZE, SIZE) and float(x.min()) < -50 and float(x.max()) > 150
    assert torch.equal(x, hu_direct[0]["x"])


def test_sample_studies_and_resolve_windows() -> None:
    from brainlib.data.base import default_windows, resolve_windows, sample_studies

    pick = sample_studies(10, 4, seed=3)
    assert pick.tolist() == sorted(set(pick.tolist())) and len(pick) == 4 and pick.max() < 10
    assert np.array_equal(pick, sample_studies(10, 4, seed=3))  # same seed, same studies
    assert sample_studies(3, 10, seed=0).tolist() == [0, 1, 2]  # more asked than exist: all
    assert resolve_windows("default") == default_windows()
    assert resolve_windows(None) is None
    assert resolve_windows(((40, 80),)) == ((40, 80),)


def test_data_roots_one_folder_serves_every_notebook(tmp_path):
    from brainlib.data.roots import data_root_for, data_roots

    assert data_roots(None, ("rsna", "cq500")) == {"rsna": None, "cq500": None}
    (tmp_path / "rsna").mkdir()
    assert data_root_for(tmp_path, "rsna") == tmp_path / "rsna"
    assert data_root_for(tmp_path, "cq500") == tmp_path  # a dataset's own root
    with pytest.raises(FileNotFoundError, match="expected a 'cq500' sub-folder"):
        data_roots(tmp_path, ("rsna", "cq500"))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        data_root_for(tmp_path / "missing", "rsna")
