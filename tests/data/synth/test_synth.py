"""Synthetic head-CT phantoms and their RSNA / CQ500 writers (brainlib.data.synth)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from scipy import ndimage

from brainlib.data.classes import CQ500_CLASSES, CQ500_HEADER, CQ500_READERS, RSNA_CLASSES, RSNA_SUBTYPES
from brainlib.data.synth import (
    FRACTURE, MASK_KEYS, PhantomTruthError, draw_subject, ensure_phantoms, load_truth, make_head_study,
    min_pixels, phantom_key, render_series, write_cq500, write_rsna,
)
from brainlib.data.synth.head_ct import TISSUES
from brainlib.data.synth.writers import _reader_calls, study_seed
from brainlib.io import read_hu

SIZE = 64


def _seed_with(types: set[str], difficulty: float = 0.0, start: int = 0) -> int:
    """First seed whose drawn subject has all of `types` (exactly none if `types` is empty)."""
    for seed in range(start, start + 2000):
        drawn = {le["type"] for le in draw_subject(seed, difficulty)["lesions"]}
        if (types <= drawn) if types else not drawn:
            return seed
    raise AssertionError(f"no seed with {types}")


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory) -> Path:
    return write_rsna(tmp_path_factory.mktemp("rsna") / "data", n_studies=6, seed=3, size=SIZE, difficulty=0.5)


@pytest.fixture(scope="module")
def cq500_root(tmp_path_factory) -> Path:
    return write_cq500(tmp_path_factory.mktemp("cq") / "data", n_studies=3, seed=5, size=SIZE, difficulty=0.5)


# ----------------------------------------------------------------------------- generator

def test_deterministic_per_seed_and_varies_between_seeds():
    a = make_head_study(11, size=SIZE)
    b = make_head_study(11, size=SIZE)
    np.testing.assert_array_equal(a.hu, b.hu)
    for k in MASK_KEYS:
        np.testing.assert_array_equal(a.masks[k], b.masks[k])
    pd.testing.assert_frame_equal(a.slice_labels, b.slice_labels)
    c = make_head_study(12, size=SIZE)
    assert a.hu.shape != c.hu.shape or not np.array_equal(a.hu, c.hu)
    counts = {make_head_study(s, size=32).n_slices for s in range(8)}
    assert min(counts) >= 24 and max(counts) <= 40 and len(counts) > 2
    assert a.hu.dtype == np.float32 and a.params["difficulty"] == 0.5 and a.params["seed"] == 11


def test_tissue_hounsfield_ranges():
    st = make_head_study(_seed_with(set()), size=128, difficulty=0.0)
    hu, tis = st.hu, st.tissue
    med = {name: float(np.median(hu[tis == code])) for name, code in TISSUES.items() if (tis == code).any()}
    assert -1050 < med["air"] < -950
    assert med["bone"] > 700 and hu[tis == TISSUES["bone"]].max() > 1200
    assert 30 <= med["grey_matter"] <= 46
    assert 20 <= med["white_matter"] <= 36 and med["white_matter"] < med["grey_matter"]
    assert -5 <= med["ventricle"] <= 18
    # bone has a low-density diploe between two cortical tables
    assert np.percentile(hu[tis == TISSUES["bone"]], 10) < 800


def test_lesion_masks_have_the_right_place_and_density():
    seed = _seed_with({"epidural", "intraventricular"})
    st = make_head_study(seed, size=128, difficulty=0.0)
    tis = st.tissue
    px = st.spacing[1]
    bone = tis == TISSUES["bone"]
    near_skull = ndimage.binary_dilation(bone, structure=np.ones((1, 3, 3), bool), iterations=int(np.ceil(26 / px)))
    edh = st.masks["epidural"]
    assert edh.sum() > 20
    assert (edh & near_skull).sum() / edh.sum() > 0.98
    intracranial = np.isin(tis, [TISSUES[k] for k in ("grey_matter", "white_matter", "csf", "ventricle", "calcification")])
    for k in RSNA_SUBTYPES:
        m = st.masks[k]
        if m.any():
            assert (m & intracranial).sum() / m.sum() > 0.97, k
    ivh = st.masks["intraventricular"]
    assert ivh.sum() > 10
    assert (ivh & (tis == TISSUES["ventricle"])).sum() / ivh.sum() > 0.9
    # blood is denser than the brain it displaces (difficulty 0: full contrast)
    assert np.median(st.hu[edh]) > np.median(st.hu[tis == TISSUES["white_matter"]]) + 15


def test_slice_labels_follow_masks_and_any_is_or():
    st = make_head_study(_seed_with({"subdural"}), size=SIZE)
    mp = min_pixels(SIZE)
    for k in RSNA_SUBTYPES:
        np.testing.assert_array_equal(st.slice_labels[k].to_numpy(), (st.masks[k].sum(axis=(1, 2)) >= mp).astype(int))
    np.testing.assert_array_equal(st.slice_labels["any"], st.slice_labels[list(RSNA_SUBTYPES)].max(axis=1))
    assert st.study_labels["SDH"] == 1 and st.study_labels["ICH"] == 1


def test_difficulty_lowers_contrast_and_size():
    seed = _seed_with({"intraparenchymal"})
    easy, hard = draw_subject(seed, 0.0), draw_subject(seed, 1.0)
    le_e = next(le for le in easy["lesions"] if le["type"] == "intraparenchymal")
    le_h = next(le for le in hard["lesions"] if le["type"] == "intraparenchymal")
    par = (easy["gm"] + easy["wm"]) / 2
    assert le_h["hu"] - par < le_e["hu"] - par
    assert max(le_h["radii"]) <= max(le_e["radii"])
    assert hard["noise_sd"] > easy["noise_sd"]
    with pytest.raises(ValueError, match="difficulty"):
        draw_subject(0, 1.5)


def test_prevalence_every_class_learnable():
    n = 300
    truth = pd.DataFrame([make_truth for make_truth in (_drawn_truth(study_seed(0, i)) for i in range(n))])
    assert 0.35 < truth["ICH"].mean() < 0.65
    for c in CQ500_CLASSES:
        assert truth[c].mean() > 0.07, c


def _drawn_truth(seed: int) -> dict:
    from brainlib.data.synth.head_ct import study_truth

    return study_truth(draw_subject(seed, 0.5))


def test_mass_effect_shifts_the_midline():
    from brainlib.data.synth.head_ct import render_series

    seed = next(s for s in range(3000) if draw_subject(s, 0.0)["mass"]["shift_mm"] > 6)
    subj = draw_subject(seed, 0.0)
    st = render_series(subj, 128, seed=seed)
    flat = dict(subj, mass=dict(subj["mass"], shift_mm=0.0, compress=0.0))
    st0 = render_series(flat, 128, seed=seed)
    vent, vent0 = st.tissue == TISSUES["ventricle"], st0.tissue == TISSUES["ventricle"]
    cols = np.arange(128)
    cx = (vent * cols).sum() / vent.sum()
    cx0 = (vent0 * cols).sum() / vent0.sum()
    # structures move away from the lesion side (+x is patient left, i.e. +column)
    assert np.sign(cx0 - cx) == np.sign(subj["mass"]["side"]) and abs(cx - cx0) > 0.5


# ----------------------------------------------------------------------------- RSNA layout

def test_rsna_tree_layout_csv_and_labels(rsna_root: Path):
    files = sorted((rsna_root / "stage_2_train").iterdir())
    assert files and all(re.fullmatch(r"ID_[0-9a-f]{9}\.dcm", f.name) for f in files)
    text = (rsna_root / "stage_2_train.csv").read_text()
    assert text.splitlines()[0] == "ID,Label"
    csv = pd.read_csv(rsna_root / "stage_2_train.csv")
    assert csv.duplicated().any()
    csv = csv.drop_duplicates()
    parts = csv["ID"].str.rsplit("_", n=1, expand=True)
    csv["image"], csv["subtype"] = parts[0], parts[1]
    assert set(csv["subtype"]) == set(RSNA_CLASSES)
    per = csv.pivot(index="image", columns="subtype", values="Label")
    assert (csv.groupby("image").size() == 6).all()
    assert set(per.index) == {f.stem for f in files}
    np.testing.assert_array_equal(per["any"], per[list(RSNA_SUBTYPES)].max(axis=1))
    truth = load_truth(rsna_root)
    t = truth.slice_labels.set_index("image_id").loc[per.index]
    for c in RSNA_CLASSES:
        np.testing.assert_array_equal(per[c].to_numpy(), t[c].to_numpy())
    assert per["any"].sum() > 0  # at least one positive slice in six studies


def test_rsna_dicom_reads_back_the_written_hu(rsna_root: Path):
    truth = load_truth(rsna_root)
    styles = set()
    for _, row in truth.study_labels.iterrows():
        sseed = int(row["study_seed"])
        st = make_head_study(sseed, SIZE, 0.5)
        sl = truth.slice_labels[truth.slice_labels["study_id"] == row["study_id"]].sort_values("z_index")
        for _, s in sl.iloc[[0, len(sl) // 2]].iterrows():
            path = rsna_root / s["path"]
            ds = pydicom.dcmread(path)
            assert ds.Modality == "CT" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
            assert ds.SOPInstanceUID == s["sop_uid"] and ds.StudyInstanceUID == row["study_id"]
            assert float(ds.ImagePositionPatient[2]) == pytest.approx(s["position_z"])
            styles.add((int(ds.BitsStored), int(ds.PixelRepresentation)))
            hu = read_hu(path)
            want = np.rint(st.hu[int(s["z_index"])])
            if int(ds.BitsStored) == 12:
                assert int(ds.PixelRepresentation) == 0 and float(ds.RescaleIntercept) > -100
                want = np.clip(want, -1000, 3095)
            inside = hu > -2000  # outside the reconstruction circle some series hold -3024
            assert inside.mean() > 0.7
            np.testing.assert_array_equal(hu[inside], want[inside])
    assert (12, 0) in styles and (16, 1) in styles


# ----------------------------------------------------------------------------- CQ500 layout

def test_cq500_tree_layout_and_reads(cq500_root: Path):
    text = (cq500_root / "reads.csv").read_text()
    assert text.splitlines()[0] == ",".join(CQ500_HEADER)
    reads = pd.read_csv(cq500_root / "reads.csv")
    assert len(reads) == 3 and all(re.fullmatch(r"CQ500-CT-\d+", n) for n in reads["name"])
    truth = load_truth(cq500_root)
    for name in reads["name"]:
        n = name.rsplit("-", 1)[1]
        study = cq500_root / f"CQ500CT{n} CQ500CT{n}" / "Unknown Study"
        series = [p for p in study.iterdir() if p.is_dir()]
        assert series and all(p.name.startswith("CT ") for p in series)
        assert any(p.name in ("CT 5mm", "CT PLAIN", "CT Plain", "CT 5mm Plain") for p in series)
        for sdir in series:
            files = sorted(sdir.iterdir())
            assert all(re.fullmatch(r"CT\d{6}\.dcm", f.name) for f in files)
            assert [f.name for f in files] == [f"CT{i:06d}.dcm" for i in range(len(files))]
    # file numbers are not the slice order in at least one series
    sl = truth.slice_labels
    shuffled = [not g.sort_values("z_index")["path"].is_monotonic_increasing for _, g in sl.groupby("series_uid")]
    assert any(shuffled)
    # majority in the truth equals the vote of the three readers in reads.csv
    st = truth.study_labels.set_index("study_id")
    for _, r in reads.iterrows():
        for c in CQ500_CLASSES:
            votes = sum(int(r[f"{rd}:{c}"]) for rd in CQ500_READERS)
            assert st.loc[r["name"], f"majority:{c}"] == int(votes >= 2)


def test_cq500_series_are_one_head_and_read_back(cq500_root: Path):
    truth = load_truth(cq500_root)
    sl = truth.slice_labels
    for _, g in sl.groupby("series_uid"):
        g = g.sort_values("z_index")
        first = pydicom.dcmread(cq500_root / g["path"].iloc[0], stop_before_pixels=True)
        last = pydicom.dcmread(cq500_root / g["path"].iloc[-1], stop_before_pixels=True)
        assert float(first.ImagePositionPatient[2]) < float(last.ImagePositionPatient[2])
        assert first.SeriesDescription == g["series_description"].iloc[0]
        mid = g.iloc[len(g) // 2]
        hu = read_hu(cq500_root / mid["path"])
        assert hu.shape == (SIZE, SIZE) and hu.min() < -900 and hu.max() > 700
        # per-slice labels are those of that series' masks
        for k in RSNA_SUBTYPES:
            assert int(mid[k]) == int(truth.masks(mid["sop_uid"])[k].sum() >= min_pixels(SIZE))


def test_readers_disagree_more_when_harder():
    truth = dict.fromkeys(("ICH", "IPH", "SDH", "MassEffect", "MidlineShift", "CalvarialFracture",
                           "Fracture", "BleedLocation-Left"), 1)
    from brainlib.data.classes import CQ500_READ_FIELDS

    truth = {f: truth.get(f, 0) for f in CQ500_READ_FIELDS}

    def disagreement(d: float) -> float:
        rng = np.random.default_rng(0)
        n = 0
        for _ in range(400):
            calls = [_reader_calls(truth, rng, d, {}) for _ in range(3)]
            n += sum(len({c[f] for c in calls}) > 1 for f in CQ500_READ_FIELDS)
        return n

    assert 0 < disagreement(0.0) < disagreement(1.0)


# ----------------------------------------------------------------------------- truth, cache, errors

def test_truth_masks_and_boxes(rsna_root: Path):
    truth = load_truth(rsna_root)
    pos = truth.slice_labels[truth.slice_labels["any"] == 1].iloc[0]
    m = truth.masks(pos["sop_uid"])
    assert set(m) == set(MASK_KEYS) and all(v.shape == (SIZE, SIZE) and v.dtype == bool for v in m.values())
    assert truth.masks(pos["image_id"]).keys() == m.keys()  # RSNA image id works too
    boxes = truth.boxes(pos["sop_uid"])
    for k, (x0, y0, x1, y1) in boxes.items():
        assert m[k][y0:y1, x0:x1].sum() == m[k].sum()
    largest = truth.boxes(pos["sop_uid"], mode="largest")
    assert set(largest) == set(boxes)
    for k in boxes:
        assert (largest[k][2] - largest[k][0]) <= (boxes[k][2] - boxes[k][0])
    with pytest.raises(KeyError):
        truth.masks("1.2.3")
    with pytest.raises(ValueError):
        truth.boxes(pos["sop_uid"], mode="median")


def test_ensure_phantoms_generates_once_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path))
    # an interrupted run leaves an incomplete folder: never reused
    stale = tmp_path / "phantoms" / phantom_key("rsna", 2, 0, 32, 0.5)
    (stale / "stage_2_train").mkdir(parents=True)
    root = ensure_phantoms("rsna", n_studies=2, seed=0, size=32, difficulty=0.5)
    assert root == stale and (root / "stage_2_train.csv").exists()
    assert len(load_truth(root).study_labels) == 2
    stamp = (root / "stage_2_train.csv").stat().st_mtime_ns

    import brainlib.data.synth.writers as w

    monkeypatch.setattr(w, "write_rsna", lambda *a, **k: (_ for _ in ()).throw(AssertionError("regenerated")))
    assert ensure_phantoms("rsna", n_studies=2, seed=0, size=32, difficulty=0.5) == root
    assert (root / "stage_2_train.csv").stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "phantoms").iterdir() if p.name.startswith(".")]


def test_ensure_phantoms_regenerates_another_generator_version(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path))
    root = ensure_phantoms("cq500", n_studies=1, seed=1, size=32, difficulty=0.25)
    params_path = root / "_phantom_truth" / "params.json"
    params = json.loads(params_path.read_text())
    params["version"] = "0-old"
    params_path.write_text(json.dumps(params))
    assert ensure_phantoms("cq500", n_studies=1, seed=1, size=32, difficulty=0.25) == root
    assert load_truth(root).params["version"] != "0-old"
    assert not [p for p in (tmp_path / "phantoms").iterdir() if p.name.startswith(".")]


def test_bad_arguments_and_missing_truth(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        write_rsna(tmp_path / "full", n_studies=1, seed=0, size=32, difficulty=0.5)
    with pytest.raises(ValueError, match="difficulty"):
        write_cq500(tmp_path / "new", n_studies=1, seed=0, size=32, difficulty=2.0)
    with pytest.raises(ValueError, match="layout"):
        ensure_phantoms("busi", n_studies=1, seed=0, size=32, difficulty=0.5)
    with pytest.raises(PhantomTruthError, match="COMPLETE"):
        load_truth(tmp_path)


def test_fracture_mask_lies_in_the_skull():
    # a fracture plane near vertical crosses the thick axial slices (a near-horizontal one hides in the slab)
    seed = next(s for s in range(3000) if any(abs(f["n"][2]) < 0.4 for f in draw_subject(s, 0.0)["fractures"]))
    st = make_head_study(seed, size=128, difficulty=0.0)
    f = st.masks[FRACTURE]
    assert f.any()
    bone = ndimage.binary_dilation(st.tissue == TISSUES["bone"], iterations=3)
    assert (f & bone).sum() / f.sum() > 0.95
    assert np.median(st.hu[f]) < 400  # the gap is soft tissue, not bone


# ----------------------------------------------------------------------------- label rule

def test_label_rule_at_the_working_size_leaves_the_csv_unchanged(tmp_path, rsna_root: Path):
    from brainlib.data.cache import area_resize
    from brainlib.data.synth.truth import LABEL_MIN_PIXELS, visible_pixels

    ruled = write_rsna(tmp_path / "ruled", n_studies=6, seed=3, size=SIZE, difficulty=0.5, label_size=32)
    assert (ruled / "stage_2_train.csv").read_text() == (rsna_root / "stage_2_train.csv").read_text()
    plain, truth = load_truth(rsna_root), load_truth(ruled)
    assert plain.label_size is None and "uncertain_any" not in plain.slice_labels
    assert truth.label_size == 32 and truth.params["label_min_pixels"] == LABEL_MIN_PIXELS
    assert "32 x 32" in truth.params["label_rule"]
    sl = truth.slice_labels
    pd.testing.assert_frame_equal(sl[list(plain.slice_labels.columns)], plain.slice_labels)
    for c in RSNA_SUBTYPES:
        pos = sl[c] == 1
        small = sl[f"px_{c}"] < LABEL_MIN_PIXELS
        assert ((sl[f"uncertain_{c}"] == 1) == (pos & small)).all()
        assert (sl.loc[sl[c] == 0, f"px_{c}"] == 0).all()  # nothing visible where nothing labelled
    # px counts working-size pixels that are at least half lesion (the cache's area average)
    row = sl.loc[sl["px_intraparenchymal"].idxmax()]
    m = truth.masks(row["sop_uid"])["intraparenchymal"]
    assert int(row["px_intraparenchymal"]) == int((area_resize(m.astype(np.uint8), 32) >= 0.5).sum())
    assert visible_pixels(m[None], 32)[0] == row["px_intraparenchymal"]
    # certain labels: uncertain -> NaN; `any` NaN only when no subtype is certainly positive
    cl = truth.certain_labels(RSNA_CLASSES).loc[sl["image_id"]]
    for c in RSNA_SUBTYPES:
        assert (cl[c].isna().to_numpy() == (sl[f"uncertain_{c}"] == 1).to_numpy()).all()
    certain_pos = (cl[list(RSNA_SUBTYPES)] == 1).any(axis=1).to_numpy()
    assert not (cl["any"].isna().to_numpy() & certain_pos).any()
    assert (cl["any"].isna().to_numpy() == (sl["uncertain_any"] == 1).to_numpy()).all()
    assert sl.filter(like="uncertain_").to_numpy().sum() > 0  # 32 px: some lesions too small


def test_label_rule_changes_the_cache_key_only_when_asked():
    assert phantom_key("rsna", 2, 0, 32, 0.5) == phantom_key("rsna", 2, 0, 32, 0.5, None)
    assert phantom_key("rsna", 2, 0, 32, 0.5, 16) != phantom_key("rsna", 2, 0, 32, 0.5)
    assert phantom_key("rsna", 2, 0, 32, 0.5, 16, 4) != phantom_key("rsna", 2, 0, 32, 0.5, 16, 8)
    with pytest.raises(ValueError, match="label_size"):
        write_rsna(Path("/nonexistent/never"), n_studies=1, seed=0, size=32, label_size=64)
