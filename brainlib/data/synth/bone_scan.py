"""Synthetic whole-body bone scans (Tc-99m MDP) written as real DICOM NM files.

For Lin et al. 2021 (Med Phys 48, "Dscint"), whose data are private. A scan is a skeleton
template (skull, spine, ribs, clavicles, scapulae, sternum, pelvis, long bones) with
physiological uptake in kidneys and bladder and low soft-tissue background, drawn in body
coordinates (units of patient height), blurred to the camera's resolution and sampled with
Poisson counting noise; patient height, breadth, counts, bladder filling and bone uptake vary.
Two views per file: anterior and posterior (posterior stored as acquired, i.e. mirrored).

Class patterns follow the abstract's own distinction and nothing more:
* ``thyroid_carcinoma``: uptake at a fixed location, the thyroid bed in the neck;
* ``metastasis``: 3-10 focal hot spots at non-fixed skeletal sites (spine, ribs, pelvis,
  proximal femora, skull);
* ``arthritis``: joint-centred uptake at knees, wrists, shoulders or ankles, often symmetric;
* ``normal``: none of these.
Benign look-alikes (injection-site hot spot at an elbow or hand, degenerative uptake at a
lower lumbar vertebra) appear in every class with the same probability, so they carry no
label information. ``difficulty`` (0 easy .. 1 hard) scales lesion contrast only.
Some patients have a follow-up scan (same anatomy and lesions, new acquisition), so
patient-level splitting matters. Every file carries the phantom mark (`marks.py`).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from brainlib.data.classes import BONESCAN_CLASSES
from brainlib.data.synth.marks import MARK_VERSION, phantom_dicom_attributes
from brainlib.data.synth import locked_generation  # lock per phantom set

GENERATOR = "brainlib.data.synth.bone_scan"
GENERATOR_VERSION = "1"
TRUTH_DIR = "_phantom_truth"
#: (name, (u0, v0), (u1, v1), radius, anterior weight, posterior weight); v > 0 = patient left.
_SEGMENTS: tuple = (
    ("cervical", (0.13, 0), (0.19, 0), .012, .8, 1.0), ("thoracic", (0.19, 0), (0.38, 0), .014, .8, 1.2),
    ("lumbar", (0.38, 0), (0.50, 0), .017, .8, 1.2), ("sacrum", (0.50, 0), (0.55, 0), .02, .7, 1.1),
    ("sternum", (0.19, 0), (0.30, 0), .009, .9, .3), ("clavicle", (0.175, .015), (0.165, .10), .007, 1., .6),
    ("humerus", (0.18, .12), (0.35, .13), .011, .7, .7), ("forearm", (0.35, .13), (0.49, .14), .009, .6, .6),
    ("hand", (0.49, .14), (0.56, .145), .012, .5, .5), ("pubis", (0.57, .015), (0.575, .05), .01, .9, .6),
    ("femur", (0.565, .055), (0.78, .05), .014, .8, .8), ("tibia", (0.78, .05), (0.955, .045), .011, .8, .7),
    ("foot", (0.955, .045), (0.99, .06), .010, .7, .7),
)
#: (name, (u, v), (ru, rv), anterior weight, posterior weight) filled ellipses.
_ELLIPSES: tuple = (
    ("skull", (0.065, 0), (0.065, 0.05), 1.0, 1.0), ("iliac", (0.52, .06), (0.035, .045), .8, 1.0),
    ("scapula", (0.23, .08), (0.05, .035), .3, .8), ("kidney", (0.42, .045), (0.03, .018), .25, .9),
)
JOINTS: dict[str, tuple[float, float]] = {"shoulder": (0.175, .125), "wrist": (0.49, .14),
                                          "knee": (0.78, .05), "ankle": (0.955, .045)}
_MET_SITES = ("cervical", "thoracic", "lumbar", "sacrum", "femur", "ribs", "iliac", "skull")
THYROID = (0.145, 0.012)


@dataclass
class Patient:
    """Everything fixed per patient: anatomy, uptake and lesions ((u, v, sigma, amp, ant, post))."""

    label: str
    height: float
    breadth: float
    shift: float
    bone: float
    kidney: float
    lesions: list[tuple[float, float, float, float, float, float]] = field(default_factory=list)


def _on_segment(rng: np.random.Generator, name: str, side: float) -> tuple[float, float]:
    if name == "ribs":
        u = 0.2 + rng.integers(0, 10) * 0.017
        return u + rng.uniform(0, 0.02), side * rng.uniform(0.03, 0.09)
    if name in ("iliac", "skull"):
        (u, v), (ru, rv) = next((c, r) for n, c, r, *_ in _ELLIPSES if n == name)
        return u + rng.uniform(-.6, .6) * ru, side * abs(v) + rng.uniform(-.6, .6) * rv
    (u0, v0), (u1, v1) = next((a, b) for n, a, b, *_ in _SEGMENTS if n == name)
    t = rng.uniform(0, 0.4 if name == "femur" else 1.0)
    return u0 + t * (u1 - u0), side * (v0 + t * (v1 - v0))


def draw_patient(rng: np.random.Generator, label: str, difficulty: float = 0.5) -> Patient:
    """Anatomy, uptake and lesions of one patient of class `label`."""
    if label not in BONESCAN_CLASSES:
        raise ValueError(f"label must be one of {BONESCAN_CLASSES}, got {label!r}")
    c = 1.6 - 1.2 * float(difficulty)  # lesion contrast: 1.0 at difficulty 0.5
    p = Patient(label, rng.uniform(0.80, 0.95), rng.uniform(0.9, 1.15), rng.uniform(-0.03, 0.03),
                rng.uniform(0.8, 1.2), rng.uniform(0.4, 1.0))
    if label == "metastasis":
        for _ in range(int(rng.integers(3, 11))):
            site = _MET_SITES[rng.integers(len(_MET_SITES))]
            u, v = _on_segment(rng, site, rng.choice((-1.0, 1.0)))
            p.lesions.append((u, v, rng.uniform(.006, .011), c * rng.uniform(2.0, 4.0), 1.0, 1.0))
    elif label == "arthritis":
        joints = rng.choice(list(JOINTS), size=int(rng.integers(1, 3)), replace=False)
        for j in joints:
            u, v = JOINTS[str(j)]
            sides = (-1.0, 1.0) if rng.random() < 0.7 else (rng.choice((-1.0, 1.0)),)
            for s in sides:
                p.lesions.append((u, s * v, rng.uniform(.012, .018), c * rng.uniform(1.2, 2.2), 1., 1.))
    elif label == "thyroid_carcinoma":
        lobes = (-1.0, 1.0) if rng.random() < 0.5 else (rng.choice((-1.0, 1.0)),)
        for s in lobes:
            p.lesions.append((THYROID[0] + rng.uniform(-.005, .005), s * THYROID[1],
                              rng.uniform(.008, .012), c * rng.uniform(2.5, 5.0), 1.0, 0.5))
    if rng.random() < 0.3:  # injection site (any class): elbow or hand, outside the pattern
        u, v = (0.35, .13) if rng.random() < 0.5 else (0.53, .145)
        p.lesions.append((u, rng.choice((-1.0, 1.0)) * v, .007, rng.uniform(3, 8), 1.0, 0.8))
    if rng.random() < 0.25:  # degenerative lower lumbar spine (any class), mild
        p.lesions.append((rng.uniform(.47, .50), rng.uniform(-.01, .01), .01, rng.uniform(.4, .9), .6, 1.))
    return p


def _window(axis: np.ndarray, lo: float, hi: float) -> slice:
    """Index range of the increasing coordinate `axis` inside [lo, hi]."""
    return slice(int(np.searchsorted(axis, lo)), int(np.searchsorted(axis, hi, side="right")))


def _add_capsule(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, a: tuple, b: tuple,
                 r: float, amp: float) -> None:
    """Add a soft-edged capsule (segment a-b, radius r) of height `amp`, inside its bounding box."""
    rs = _window(rows, min(a[0], b[0]) - 2 * r, max(a[0], b[0]) + 2 * r)
    cs = _window(cols, min(a[1], b[1]) - 2 * r, max(a[1], b[1]) + 2 * r)
    uu, vv = np.meshgrid(rows[rs], cols[cs], indexing="ij")
    d0, d1 = b[0] - a[0], b[1] - a[1]
    t = np.clip(((uu - a[0]) * d0 + (vv - a[1]) * d1) / max(d0 * d0 + d1 * d1, 1e-12), 0, 1)
    dist = np.hypot(uu - a[0] - t * d0, vv - a[1] - t * d1)
    img[rs, cs] += amp * np.clip((r - dist) / (0.3 * r) + 0.5, 0, 1)


def _add_ellipse(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, c: tuple, radii: tuple,
                 amp: float, gauss: bool = False) -> None:
    """Add a filled ellipse (or, with `gauss`, a Gaussian of sigma `radii`) of height `amp`."""
    reach = 4.0 if gauss else 1.0
    rs = _window(rows, c[0] - reach * radii[0], c[0] + reach * radii[0])
    cs = _window(cols, c[1] - reach * radii[1], c[1] + reach * radii[1])
    uu, vv = np.meshgrid(rows[rs], cols[cs], indexing="ij")
    q = ((uu - c[0]) / radii[0]) ** 2 + ((vv - c[1]) / radii[1]) ** 2
    img[rs, cs] += amp * (np.exp(-0.5 * q) if gauss else (q <= 1))


def _uptake(p: Patient, shape: tuple[int, int], view: int, bladder: float) -> np.ndarray:
    """Expected uptake map of one view (0 anterior, 1 posterior, before mirroring)."""
    h, w = shape
    scale = p.height * h  # pixels per unit of patient height
    rows = (np.arange(h) - 0.01 * h) / scale
    cols = (np.arange(w) - w / 2 - p.shift * w) / (scale * p.breadth)
    img = np.zeros(shape)
    img += 0.04 * np.exp(-0.5 * (cols / 0.12) ** 2)[None, :] * ((rows > 0) & (rows < 1))[:, None]
    for _, a, b, r, wa, wp in _SEGMENTS:
        for s in ((1.0,) if a[1] == b[1] == 0 else (-1.0, 1.0)):
            _add_capsule(img, rows, cols, (a[0], s * a[1]), (b[0], s * b[1]), r,
                         p.bone * (wa, wp)[view])
    for i in range(10):  # ribs: two strokes a side
        u = 0.2 + i * 0.017
        for s in (-1.0, 1.0):
            for a, b in (((u, .015), (u - .004, .08)), ((u - .004, .08), (u + .03, .1))):
                _add_capsule(img, rows, cols, (a[0], s * a[1]), (b[0], s * b[1]), .005,
                             p.bone * (.35, .6)[view])
    for name, (u, v), radii, wa, wp in _ELLIPSES:
        amp = (p.kidney if name == "kidney" else p.bone) * (wa, wp)[view]
        for s in ((1.0,) if v == 0 else (-1.0, 1.0)):
            _add_ellipse(img, rows, cols, (u, s * v), radii, amp)
    _add_ellipse(img, rows, cols, (.585, 0.0), (.02, .025), bladder * (1.0, 0.6)[view])
    for u, v, sig, amp, wa, wp in p.lesions:
        _add_ellipse(img, rows, cols, (u, v), (sig, sig), amp * (wa, wp)[view], gauss=True)
    return img


def render_scan(p: Patient, rng: np.random.Generator, shape: tuple[int, int] = (1024, 256),
                counts: float | None = None) -> np.ndarray:
    """Counts (2, H, W) uint16: anterior, posterior (mirrored as acquired); new acquisition per call."""
    total = counts if counts is not None else rng.uniform(0.8e6, 2.0e6)
    bladder = rng.uniform(0.5, 3.0)
    sigma = 3.0 * shape[0] / 1024  # ~7 mm FWHM system resolution at 2 mm/pixel
    out = []
    for view in (0, 1):
        lam = gaussian_filter(_uptake(p, shape, view, bladder), sigma)
        lam = lam / lam.sum() * total * (1.0 if view == 0 else rng.uniform(0.9, 1.1))
        img = rng.poisson(lam).astype(np.uint16)
        out.append(img if view == 0 else img[:, ::-1])
    return np.stack(out)


def lesion_pixels(p: Patient, shape: tuple[int, int]) -> list[tuple[float, float]]:
    """(row, col) of every lesion in the anterior frame of a scan of `shape`."""
    h, w = shape
    return [(0.01 * h + u * p.height * h, w / 2 + p.shift * w + v * p.height * h * p.breadth)
            for u, v, *_ in p.lesions]


# --------------------------------------------------------------------------- DICOM NM writer
def _view_item(view: str):
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue = {"anterior": "255549009", "posterior": "255551008"}[view]
    code.CodingSchemeDesignator = "SCT"
    code.CodeMeaning = view
    item = Dataset()
    item.ViewCodeSequence = [code]
    return item


def write_nm(path: str | os.PathLike[str], counts: np.ndarray, *, patient_id: str, study_uid: str,
             seed: int, study_index: int, views: tuple[str, ...] = ("anterior", "posterior"),
             description: str = "WB BONE ANT POST") -> Path:
    """One whole-body NM file: frames = `counts` (F, H, W) uint16, views in the detector module."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.tag import Tag
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    from brainlib._atomic import atomic_path

    counts = np.ascontiguousarray(counts, dtype=np.uint16)
    sop = generate_uid(entropy_srcs=[patient_id, study_uid, str(path)])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.20"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.Modality = "NM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    ds.PatientID = ds.PatientName = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[study_uid, "series"])
    ds.SeriesDescription = description
    ds.RadiopharmaceuticalInformationSequence = [Dataset()]
    ds.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical = "Tc-99m MDP"
    ds.NumberOfFrames = counts.shape[0]
    ds.FrameIncrementPointer = Tag(0x0054, 0x0020)
    ds.DetectorVector = list(range(1, counts.shape[0] + 1))
    ds.NumberOfDetectors = counts.shape[0]
    ds.DetectorInformationSequence = [_view_item(v) for v in views]
    ds.Rows, ds.Columns = int(counts.shape[1]), int(counts.shape[2])
    ds.PixelSpacing = [2.0 * 1024 / counts.shape[1]] * 2
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    for key, value in phantom_dicom_attributes(GENERATOR, GENERATOR_VERSION, seed, layout="bonescan",
                                               study_index=study_index).items():
        setattr(ds, key, value)
    ds.PixelData = counts.tobytes()
    with atomic_path(path, fsync=False) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)


def write_bonescan(root: str | os.PathLike[str], n_studies: int = 40, seed: int = 0,
                   shape: tuple[int, int] = (1024, 256), difficulty: float = 0.5,
                   follow_up: float = 0.25) -> Path:
    """A folder-per-class tree ``<root>/<class>/<patient>_<k>.dcm`` of marked NM phantoms.

    `n_studies` patients, classes balanced in turn; a share `follow_up` of patients has a second
    scan. Ground truth (labels, patients, lesion pixels) in ``<root>/_phantom_truth/scans.csv``.
    """
    root = Path(root)
    rows = []
    for i in range(int(n_studies)):
        rng = np.random.default_rng([int(seed), i])
        label = BONESCAN_CLASSES[i % len(BONESCAN_CLASSES)]
        patient = draw_patient(rng, label, difficulty)
        pid = f"BS{int(seed):03d}{i:04d}"
        for k in range(2 if rng.random() < follow_up else 1):
            path = root / label / f"{pid}_{k + 1}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            study_uid = f"1.2.826.0.1.3680043.10.1{int(seed) % 1000:03d}.{i}.{k + 1}"
            write_nm(path, render_scan(patient, rng, shape), patient_id=pid, study_uid=study_uid,
                     seed=seed, study_index=i)
            rows.append({"path": path.relative_to(root).as_posix(), "label": label, "patient": pid,
                         "lesions": json.dumps([[round(r, 1), round(c, 1)]
                                                for r, c in lesion_pixels(patient, shape)])})
    truth = root / TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    with open(truth / "scans.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "patient", "lesions"])
        writer.writeheader()
        writer.writerows(rows)
    params = {"generator": GENERATOR, "version": GENERATOR_VERSION, "mark_version": MARK_VERSION,
              "n_studies": n_studies, "seed": seed, "shape": list(shape), "difficulty": difficulty}
    (truth / "params.json").write_text(json.dumps(params, indent=2) + "\n")
    (truth / "COMPLETE").write_text("")
    return root


def load_bonescan_truth(root: str | os.PathLike[str]) -> list[dict]:
    """Rows of ``_phantom_truth/scans.csv`` with ``lesions`` as a list of (row, col)."""
    with open(Path(root) / TRUTH_DIR / "scans.csv", newline="", encoding="utf-8") as fh:
        return [{**r, "lesions": [tuple(x) for x in json.loads(r["lesions"])]} for r in csv.DictReader(fh)]


@locked_generation
def ensure_bonescan(n_studies: int = 40, seed: int = 0, shape: tuple[int, int] = (1024, 256),
                    difficulty: float = 0.5) -> Path:
    """A cached phantom tree (generated once into ``cache_dir("phantoms")``, renamed when complete)."""
    from brainlib.paths import cache_dir

    base = cache_dir("phantoms")
    final = base / (f"bonescan-n{n_studies}-s{seed}-{shape[0]}x{shape[1]}-d{difficulty}"
                    f"-g{GENERATOR_VERSION}-m{MARK_VERSION}")
    if (final / TRUTH_DIR / "COMPLETE").exists():
        return final
    tmp = base / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_bonescan(tmp, n_studies, seed, shape, difficulty)
        if not (final / TRUTH_DIR / "COMPLETE").exists():
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
