"""Write phantom studies as real CT DICOM trees in the RSNA 2019 and CQ500 layouts.

The trees reproduce the published layouts and their quirks (DESIGN.md, "Dataset facts"), so
the loaders of the real datasets read them unchanged:

- RSNA: `stage_2_train/ID_<9 hex>.dcm`, `stage_2_train.csv` (`ID,Label`, six rows per image
  in the CSV's subtype order, `any` = OR, a few duplicated images), one series per study,
  signed int16 (intercept -1024) for most series, the unsigned 12-bit style (BitsStored 12,
  PixelRepresentation 0, intercept 0) for some, multi-valued window tags on some, the
  reconstruction circle padded to -3024 HU on some.
- CQ500: `reads.csv` (verbatim 44-column header), three readers who sometimes disagree,
  `CQ500CT<N> CQ500CT<N>/Unknown Study/CT <desc>/CT000000.dcm...` with a thick plain series,
  usually a thin plain and a bone series, sometimes a post-contrast one; file numbers shuffled
  relative to slice order; InstanceNumber descending in some series.

Every DICOM file carries the phantom mark (`marks.py`: `Manufacturer` "brainlib phantom",
generator name in `ManufacturerModelName`, brainlib and generator versions in
`SoftwareVersions`, the dataset seed in `DeviceSerialNumber`, a readable sentence with the
study seed in `ImageComments`), so the loaders know a phantom tree is synthetic wherever it
lives. The mark adds header attributes only: pixels and labels are those of the same seed
without it. Ground truth goes to `<root>/_phantom_truth/` (see `truth.py`); the cache of
generated trees (`ensure_phantoms`) is `phantom_cache.py`.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainlib._atomic import atomic_write
from brainlib.data.classes import CQ500_CLASSES, CQ500_HEADER, CQ500_READ_FIELDS, CQ500_READERS, RSNA_SUBTYPES
from brainlib.data.synth.head_ct import (
    FRACTURE, GENERATOR_VERSION, MASK_KEYS, PhantomStudy, draw_subject, make_head_study, min_pixels, render_series,
)
from brainlib.data.synth.marks import HEAD_CT_GENERATOR, MARK_VERSION, PHANTOM_MANUFACTURER, phantom_dicom_attributes
from brainlib.data.synth.truth import (LABEL_MIN_PIXELS, TRUTH_DIR, dump_json, label_rule_text,
                                       uncertain_columns, write_masks)
from brainlib.io.testing import uid_from, write_ct_slice

#: subtype order of the rows of the real stage_2_train.csv (`any` last).
RSNA_CSV_ORDER: tuple[str, ...] = RSNA_SUBTYPES + ("any",)
LAYOUTS = ("rsna", "cq500")


def study_seed(seed: int, index: int) -> int:
    """Seed of study `index` of a dataset generated with `seed` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _check_args(root: Path, n_studies: int, size: int, difficulty: float,
                label_size: int | None = None) -> None:
    if n_studies < 1:
        raise ValueError(f"n_studies must be >= 1, got {n_studies}")
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    if label_size is not None and not 1 <= int(label_size) <= size:
        raise ValueError(f"label_size must be in [1, size={size}], got {label_size}")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root}: output directory exists and is not empty")


def _circle_pad(hu: np.ndarray, value: float = -3024.0) -> np.ndarray:
    """Pad outside the reconstruction circle like many scanners do."""
    n = hu.shape[-1]
    c = (np.arange(n) - (n - 1) / 2) / (n / 2)
    outside = (c[None, :] ** 2 + c[:, None] ** 2) > 1.0
    out = hu.copy()
    out[..., outside] = value
    return out


def _hex_id(taken: set[str], n: int, *parts: object) -> str:
    salt = 0
    while True:
        h = hashlib.sha1("|".join(map(str, parts + (salt,))).encode()).hexdigest()[:n]
        if h not in taken:
            taken.add(h)
            return h
        salt += 1


def _slice_rows(study: PhantomStudy, sops: list[str], image_ids: list[str], paths: list[str],
                study_id: str, series_uid: str, desc: str, label_size: int | None = None,
                label_min_pixels: int = LABEL_MIN_PIXELS) -> pd.DataFrame:
    df = study.slice_labels.copy()
    df.insert(0, "sop_uid", sops)
    df.insert(1, "image_id", image_ids)
    df.insert(2, "study_id", study_id)
    df.insert(3, "series_uid", series_uid)
    df.insert(4, "series_description", desc)
    df.insert(5, "path", paths)
    df.insert(6, "z_index", np.arange(study.n_slices))
    df.insert(7, "position_z", study.positions[:, 2])
    df["calcification"] = (study.distractors["calcification"].sum(axis=(1, 2)) >= min_pixels(study.size)).astype(np.int8)
    if label_size is not None:
        extra = uncertain_columns(study.masks, df, list(RSNA_SUBTYPES), label_size, label_min_pixels)
        df = pd.concat([df, extra], axis=1)
    return df


def _write_series(study: PhantomStudy, paths: list[Path], *, style: str, windows, pad: bool,
                  patient_id: str, study_uid: str, series_uid: str, sops: list[str],
                  series_number: int, desc: str, instance_numbers: list[int], extra: dict) -> None:
    hu = _circle_pad(study.hu) if pad else study.hu
    for z in range(study.n_slices):
        write_ct_slice(
            paths[z], hu[z], style=style, patient_id=patient_id, study_uid=study_uid,
            series_uid=series_uid, sop_uid=sops[z], series_number=series_number,
            instance_number=instance_numbers[z], series_description=desc,
            position=[float(v) for v in study.positions[z]], orientation=study.orientation,
            pixel_spacing=(study.spacing[1], study.spacing[2]), slice_thickness=study.slice_thickness,
            windows=windows, extra=extra,
        )


def _mark(layout: str, seed: int, index: int, sseed: int) -> dict[str, Any]:
    """The phantom mark of every file of study `index` (see `marks.py`)."""
    return phantom_dicom_attributes(HEAD_CT_GENERATOR, GENERATOR_VERSION, seed, layout=layout,
                                    study_index=index, study_seed=sseed)


def _finish_truth(root: Path, params: dict[str, Any], slices: list[pd.DataFrame], studies: list[dict]) -> None:
    tdir = root / TRUTH_DIR
    atomic_write(tdir / "slice_labels.csv", pd.concat(slices, ignore_index=True).to_csv(index=False), fsync=False)
    atomic_write(tdir / "study_labels.csv", pd.DataFrame(studies).to_csv(index=False), fsync=False)
    atomic_write(tdir / "params.json", dump_json(params), fsync=False)
    atomic_write(tdir / "COMPLETE", "ok\n", fsync=False)


def _base_params(layout: str, n_studies: int, seed: int, size: int, difficulty: float,
                 label_size: int | None = None, label_min_pixels: int = LABEL_MIN_PIXELS) -> dict[str, Any]:
    return dict(generator="brainlib.data.synth", version=GENERATOR_VERSION, layout=layout,
                mark=PHANTOM_MANUFACTURER, mark_version=MARK_VERSION,
                n_studies=int(n_studies), seed=int(seed), size=int(size), difficulty=float(difficulty),
                min_pixels=min_pixels(size), mask_classes=list(MASK_KEYS),
                label_size=None if label_size is None else int(label_size),
                label_min_pixels=None if label_size is None else int(label_min_pixels),
                label_rule=None if label_size is None else label_rule_text(label_size, label_min_pixels),
                box_note="PhantomTruth.boxes(sop, mode='all'|'largest'): (x_min, y_min, x_max, y_max), max exclusive",
                studies=[])


# ----------------------------------------------------------------------------- RSNA

def write_rsna(root: str | os.PathLike[str], n_studies: int = 20, seed: int = 0, size: int = 512,
               difficulty: float = 0.5, label_size: int | None = None,
               label_min_pixels: int = LABEL_MIN_PIXELS) -> Path:
    """Write `n_studies` phantom series in the RSNA 2019 ICH layout under `root`; return root.

    `label_size` (a model's working size) adds the label rule at that size to the truth
    sidecar (`uncertain_<class>` columns, see `truth.py`); the CSV is the same either way.
    """
    root = Path(root)
    _check_args(root, n_studies, size, difficulty, label_size)
    img_dir = root / "stage_2_train"
    img_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    params = _base_params("rsna", n_studies, seed, size, difficulty, label_size, label_min_pixels)
    slices, studies, csv_blocks = [], [], []
    for i in range(n_studies):
        sseed = study_seed(seed, i)
        st = make_head_study(sseed, size, difficulty)
        subject = st.params["subject"]
        rng = np.random.default_rng([int(seed), i, 0x45A])
        style = "rsna12" if rng.random() < 0.2 else "int16"
        windows = [(40.0, 80.0), (40.0, 80.0)] if rng.random() < 0.3 else [(40.0, 80.0)]
        pad = style == "int16" and rng.random() < 0.5
        study_uid = uid_from("rsna-study", seed, i)
        series_uid = uid_from("rsna-series", seed, i)
        hexes = [_hex_id(taken, 9, "sop", seed, i, z) for z in range(st.n_slices)]
        sops = [uid_from("rsna-sop", seed, i, z) for z in range(st.n_slices)]
        ids = [f"ID_{h}" for h in hexes]
        paths = [img_dir / f"{iid}.dcm" for iid in ids]
        patient = f"ID_{_hex_id(taken, 8, 'patient', seed, i)}"
        _write_series(st, paths, style=style, windows=windows, pad=pad, patient_id=patient,
                      study_uid=study_uid, series_uid=series_uid, sops=sops, series_number=1,
                      desc="", instance_numbers=list(range(1, st.n_slices + 1)),
                      extra=_mark("rsna", seed, i, sseed))
        df = _slice_rows(st, sops, ids, [str(p.relative_to(root)) for p in paths], study_uid, series_uid, "",
                         label_size, label_min_pixels)
        slices.append(df)
        write_masks(root / TRUTH_DIR / "masks" / f"{series_uid}.npz", st.masks, sops)
        for iid, (_, row) in zip(ids, df.iterrows()):
            csv_blocks.append([(f"{iid}_{c}", int(row[c])) for c in RSNA_CSV_ORDER])
        studies.append(dict(study_id=study_uid, series_uid=series_uid, study_seed=sseed, n_slices=st.n_slices,
                            style=style, **st.study_labels))
        params["studies"].append(dict(study_id=study_uid, study_seed=sseed, subject=subject))
    # CSV: images in shuffled order, a few images' six rows duplicated
    rng = np.random.default_rng([int(seed), 0xC5F])
    order = rng.permutation(len(csv_blocks))
    n_dup = max(1, len(csv_blocks) // 100)
    dups = set(int(k) for k in rng.choice(len(csv_blocks), size=n_dup, replace=False))
    lines = ["ID,Label"]
    for k in order:
        reps = 2 if int(k) in dups else 1
        for _ in range(reps):
            lines.extend(f"{rid},{lab}" for rid, lab in csv_blocks[k])
    atomic_write(root / "stage_2_train.csv", "\n".join(lines) + "\n", fsync=False)
    params["duplicated_images"] = sorted(csv_blocks[k][0][0].rsplit("_", 1)[0] for k in dups)
    _finish_truth(root, params, slices, studies)
    return root


# ----------------------------------------------------------------------------- CQ500

_THICK = ("CT 5mm", "CT PLAIN", "CT Plain", "CT 5mm Plain")
_THIN = ("CT PLAIN THIN", "CT Thin Plain", "CT 0.625mm", "CT PLAIN THIN 0.625")
_BONE = ("CT BONE", "CT Thin Bone", "CT 0.625mm BONE")


def _reader_calls(truth: dict[str, int], rng: np.random.Generator, difficulty: float,
                  subtle: dict[str, float]) -> dict[str, int]:
    """One reader's 14 fields: the truth with misses and false calls, kept self-consistent."""
    d = float(difficulty)
    call: dict[str, int] = {}
    for f in ("IPH", "IVH", "SDH", "EDH", "SAH", "CalvarialFracture", "MassEffect", "MidlineShift"):
        if truth[f]:
            p_miss = (0.03 + 0.12 * d) * (1.0 + 2.0 * subtle.get(f, 0.0))
            call[f] = int(rng.random() >= p_miss)
        else:
            call[f] = int(rng.random() < 0.01 + 0.04 * d)
    call["OtherFracture"] = int(rng.random() < 0.01 + 0.02 * d)
    call["ICH"] = int(any(call[f] for f in ("IPH", "IVH", "SDH", "EDH", "SAH")))
    call["Fracture"] = int(call["CalvarialFracture"] or call["OtherFracture"])
    for f in ("BleedLocation-Left", "BleedLocation-Right", "ChronicBleed"):
        call[f] = int(truth[f] and call["ICH"])
    if call["ICH"] and not (call["BleedLocation-Left"] or call["BleedLocation-Right"]):
        call["BleedLocation-Left" if rng.random() < 0.5 else "BleedLocation-Right"] = 1
    return {f: call[f] for f in CQ500_READ_FIELDS}


def _series_extra(p: dict[str, Any]) -> dict[str, str]:
    extra = {"ConvolutionKernel": "BONE" if p["kernel"] == "bone" else "STANDARD"}
    if p["contrast"]:
        extra["ContrastBolusAgent"] = "IOHEXOL"
    return extra


def write_cq500(root: str | os.PathLike[str], n_studies: int = 20, seed: int = 0, size: int = 512,
                difficulty: float = 0.5, label_size: int | None = None,
                label_min_pixels: int = LABEL_MIN_PIXELS) -> Path:
    """Write `n_studies` phantom patients in the CQ500 layout under `root`; return root.

    `label_size` adds the label rule at that working size to the truth sidecar (as in
    `write_rsna`); reads.csv is the same either way.
    """
    root = Path(root)
    _check_args(root, n_studies, size, difficulty, label_size)
    root.mkdir(parents=True, exist_ok=True)
    rng_names = np.random.default_rng([int(seed), 0xC500])
    numbers = sorted(int(n) for n in rng_names.choice(max(3 * n_studies, 10), size=n_studies, replace=False))
    params = _base_params("cq500", n_studies, seed, size, difficulty, label_size, label_min_pixels)
    slices, studies, read_rows = [], [], []
    for i, N in enumerate(numbers):
        sseed = study_seed(seed, i)
        subject = draw_subject(sseed, difficulty)
        rng = np.random.default_rng([int(seed), i, 0xC5])
        name = f"CQ500-CT-{N}"
        study_dir = root / f"CQ500CT{N} CQ500CT{N}" / "Unknown Study"
        study_uid = uid_from("cq500-study", seed, i)
        plan = [dict(desc=str(rng.choice(_THICK)), factor=1.0, kernel="soft", contrast=False)]
        if rng.random() < 0.85:
            plan.append(dict(desc=str(rng.choice(_THIN)), factor=0.5, kernel="soft", contrast=False))
        if rng.random() < 0.7:
            plan.append(dict(desc=str(rng.choice(_BONE)), factor=float(rng.choice([0.5, 1.0])),
                             kernel="bone", contrast=False))
        if rng.random() < 0.2:
            plan.append(dict(desc="CT POST CONTRAST", factor=1.0, kernel="soft", contrast=True))
        order = rng.permutation(len(plan))
        thick_study = None
        for sn, k in enumerate(order, start=1):
            p = plan[int(k)]
            st = render_series(subject, size, seed=sseed, spacing_factor=p["factor"], kernel=p["kernel"],
                               contrast=p["contrast"], series_key=p["desc"])
            if p is plan[0]:
                thick_study = st
            series_uid = uid_from("cq500-series", seed, i, p["desc"])
            sops = [uid_from("cq500-sop", seed, i, p["desc"], z) for z in range(st.n_slices)]
            numbering = rng.permutation(st.n_slices)  # file names do not give slice order
            sdir = study_dir / p["desc"]
            paths = [sdir / f"CT{int(numbering[z]):06d}.dcm" for z in range(st.n_slices)]
            inst = list(range(1, st.n_slices + 1))
            if rng.random() < 0.3:
                inst = inst[::-1]
            style = "uint16" if rng.random() < 0.15 else "int16"
            windows = [(40.0, 80.0), (80.0, 200.0)] if rng.random() < 0.3 else [(40.0, 80.0)]
            if p["kernel"] == "bone":
                windows = [(600.0, 2800.0)]
            _write_series(st, paths, style=style, windows=windows, pad=False, patient_id=name,
                          study_uid=study_uid, series_uid=series_uid, sops=sops, series_number=sn,
                          desc=p["desc"], instance_numbers=inst,
                          extra={**_series_extra(p), **_mark("cq500", seed, i, sseed)})
            rel = [str(q.relative_to(root)) for q in paths]
            slices.append(_slice_rows(st, sops, rel, rel, name, series_uid, p["desc"], label_size,
                                      label_min_pixels))
            write_masks(root / TRUTH_DIR / "masks" / f"{series_uid}.npz", st.masks, sops)
        assert thick_study is not None
        truth = thick_study.study_labels
        # subtle lesions (few positive slices) are missed more often
        subtle = {}
        for t, short in (("epidural", "EDH"), ("intraparenchymal", "IPH"), ("intraventricular", "IVH"),
                         ("subarachnoid", "SAH"), ("subdural", "SDH"), (FRACTURE, "CalvarialFracture")):
            n_pos = int(thick_study.slice_labels[t].sum())
            subtle[short] = 1.0 if 0 < n_pos <= 2 else 0.0
        rrng = np.random.default_rng([int(seed), i, 0x4EAD])
        calls = {r: _reader_calls(truth, rrng, difficulty, subtle) for r in CQ500_READERS}
        row: dict[str, Any] = {"name": name, "Category": "B1" if rng.random() < 0.5 else "B2"}
        for r in CQ500_READERS:
            for f in CQ500_READ_FIELDS:
                row[f"{r}:{f}"] = calls[r][f]
        read_rows.append(row)
        srow: dict[str, Any] = dict(study_id=name, study_uid=study_uid, study_seed=sseed,
                                    n_series=len(plan), **truth)
        for c in CQ500_CLASSES:
            votes = [calls[r][c] for r in CQ500_READERS]
            for r, v in zip(CQ500_READERS, votes):
                srow[f"{r}:{c}"] = v
            srow[f"majority:{c}"] = int(sum(votes) >= 2)
        studies.append(srow)
        params["studies"].append(dict(study_id=name, study_seed=sseed, series=[p["desc"] for p in plan],
                                      subject=subject))
    reads = pd.DataFrame(read_rows, columns=list(CQ500_HEADER))
    reads = reads.iloc[np.random.default_rng([int(seed), 0x5EAD]).permutation(len(reads))]
    atomic_write(root / "reads.csv", reads.to_csv(index=False), fsync=False)
    _finish_truth(root, params, slices, studies)
    return root
