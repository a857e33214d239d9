"""Analytic synthetic head CT with intracranial haemorrhage, deterministic per seed.

The head is a set of smooth analytic fields evaluated on the voxel grid (vectorised numpy, in
chunks of slices): an ellipsoidal head with scalp, a skull of variable thickness (outer
table, diploe, inner table), grey/white matter with sulci, ventricles, fissures and basal
cisterns, and a skull base. Every structure is drawn with a soft edge one pixel wide, so
edges carry partial volume.

Lesions follow the shapes of He et al. (2024), Table 1: IPH round/oval in the parenchyma,
IVH inside (a part of) the ventricles, SAH along sulci, fissures and cisterns, SDH a broad
crescent along the convexity, EDH a lens (fusiform, biconvex) against the inner table.
Distractors: calcifications (pineal, choroid plexus in the ventricular atria -- the DrCT2
"white spot" trap of Wang et al., Fig. 3, visible on one slice only; falx, basal ganglia),
beam hardening near the inner table and streaks at the skull base, dense dural sinus.
Calvarial fractures, mass effect (ipsilateral ventricle compression) and midline shift
are rendered and labelled.

`difficulty` in [0, 1] pulls lesion contrast toward the noise floor, raises the noise and
shrinks lesions; it is recorded in `PhantomStudy.params`. Coordinates: DICOM patient (LPS)
millimetres; image rows run along +y (posterior), columns along +x (patient left).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from brainlib.data.classes import CQ500_READ_FIELDS, RSNA_CLASSES, RSNA_SUBTYPES

GENERATOR_VERSION = "3"
FRACTURE = "calvarial_fracture"
#: keys of `PhantomStudy.masks`: the five RSNA subtypes (CSV names) and calvarial fractures.
MASK_KEYS: tuple[str, ...] = RSNA_SUBTYPES + (FRACTURE,)
#: keys of `PhantomStudy.distractors` (truth for analysis only; never a positive label).
DISTRACTOR_KEYS: tuple[str, ...] = ("calcification",)
#: RSNA subtype name -> CQ500 label name.
RSNA_TO_CQ500: dict[str, str] = {
    "epidural": "EDH", "intraparenchymal": "IPH", "intraventricular": "IVH",
    "subarachnoid": "SAH", "subdural": "SDH",
}
_F32 = np.float32
#: labels of `PhantomStudy.tissue` (anatomy before lesions are drawn).
TISSUES: dict[str, int] = {"air": 0, "soft_tissue": 1, "bone": 2, "grey_matter": 3, "white_matter": 4,
                           "csf": 5, "ventricle": 6, "calcification": 7}


def min_pixels(size: int) -> int:
    """Pixels a lesion mask needs on a slice for that slice to be labelled positive."""
    return max(2, int(round(4 * (size / 256.0) ** 2)))


@dataclass
class PhantomStudy:
    """One synthetic head CT series and its ground truth.

    `hu` is (Z, H, W) float32 Hounsfield units, slices ordered inferior -> superior;
    `masks[k]` (Z, H, W) bool for k in `MASK_KEYS`; `slice_labels` has one row per slice
    and columns `RSNA_CLASSES` + `calvarial_fracture` (0/1); `study_labels` holds the 14
    CQ500 reader fields (truth) and the RSNA classes (study-level OR).
    """

    seed: int
    size: int
    difficulty: float
    hu: np.ndarray
    masks: dict[str, np.ndarray]
    distractors: dict[str, np.ndarray]
    tissue: np.ndarray  # (Z, H, W) uint8, labels in TISSUES (anatomy under the lesions)
    slice_labels: pd.DataFrame
    study_labels: dict[str, int]
    spacing: tuple[float, float, float]  # (slice spacing, row spacing, column spacing) mm
    positions: np.ndarray  # (Z, 3) ImagePositionPatient
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    slice_thickness: float = 5.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_slices(self) -> int:
        """Number of slices Z of ``hu``."""
        return int(self.hu.shape[0])


# ----------------------------------------------------------------------------- subject draw

def _rot(pitch: float, roll: float, yaw: float) -> np.ndarray:
    cx, sx = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(roll), math.sin(roll)
    cz, sz = math.cos(yaw), math.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _convexity_dir(rng: np.random.Generator) -> list[float]:
    """A direction on the upper/lateral convexity (where EDH/SDH/fractures sit)."""
    while True:
        v = rng.normal(size=3)
        v[0] *= 1.6  # favour lateral
        v = _unit(v)
        if -0.25 < v[2] < 0.75 and abs(v[0]) > 0.25:
            return [float(a) for a in v]


_TYPE_WEIGHTS = {"intraparenchymal": 1.0, "subdural": 1.0, "subarachnoid": 1.0,
                 "intraventricular": 0.85, "epidural": 0.75}


def _blood_hu(rng: np.random.Generator, lo: float, hi: float, d: float, parenchyma: float) -> float:
    """Blood density with contrast pulled toward the parenchyma as difficulty rises."""
    h = rng.uniform(lo, hi)
    c = rng.uniform(1.0 - 0.75 * d, 1.0 - 0.25 * d)
    return float(parenchyma + (h - parenchyma) * c)


def _draw_subject(seed: int, difficulty: float) -> dict[str, Any]:
    """All random choices of one subject (anatomy, lesions, distractors) as plain numbers."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    d = float(np.clip(difficulty, 0.0, 1.0))
    A, B, C = rng.uniform(68, 80), rng.uniform(86, 100), rng.uniform(98, 112)
    atrophy = rng.uniform(0, 1)
    s: dict[str, Any] = dict(
        A=A, B=B, C=C, atrophy=atrophy,
        center=[rng.uniform(-8, 8), rng.uniform(-10, 6), 0.0],
        tilt_deg=[rng.uniform(-12, 12), rng.uniform(-4, 4), rng.uniform(-6, 6)],
        fov=rng.uniform(2.35, 2.75) * B,
        n_slices=int(rng.integers(24, 41)),
        z_offset=float(rng.uniform(-220, 40)),
        scalp_t=rng.uniform(4, 7), skull_t=rng.uniform(5.5, 8.5),
        skull_mod=[[float(x) for x in rng.normal(size=3) * 2.5] + [rng.uniform(0, 6.3), rng.uniform(0.05, 0.15)]
                   for _ in range(3)],
        cortical=rng.uniform(1300, 1800), diploe=rng.uniform(350, 700),
        gm=rng.uniform(36, 42), wm=rng.uniform(25, 31), csf=rng.uniform(2, 12),
        csf_film=0.4 + 2.0 * atrophy, gm_t=rng.uniform(2.5, 3.5),
        sulc_k=[[float(x) for x in _unit(rng.normal(size=3)) * rng.uniform(0.2, 0.32)]
                + [rng.uniform(0, 6.3)] for _ in range(6)],
        sulc_half=0.5 + 1.0 * atrophy, sulc_depth=rng.uniform(8, 14),
        vent=dict(vx=rng.uniform(4.5, 7.5), ax=rng.uniform(3.5, 5.5) + 3.5 * atrophy,
                  vy=rng.uniform(-4, 4), by=rng.uniform(28, 36), vz=rng.uniform(8, 18),
                  cz=rng.uniform(6, 9), kappa=rng.uniform(0.006, 0.014)),
        fissure_half=0.5 + 1.2 * atrophy,
        noise_sd=rng.uniform(3.0, 5.0) + 5.0 * d, noise_corr=rng.uniform(0.6, 1.1),
        bh_amp=rng.uniform(3, 10) + 6 * d, bh_len=rng.uniform(1.5, 3.5),
        streak_amp=rng.uniform(10, 40),
        sinus_hu=rng.uniform(45, 60),
        difficulty=d,
    )
    # --- distractors (in normal studies too): calcifications, the DrCT2 trap
    calcs = []
    vz, vy, by = s["vent"]["vz"], s["vent"]["vy"], s["vent"]["by"]
    if rng.random() < 0.6:  # pineal
        calcs.append(dict(where="pineal", c=[0.0, vy + 16, vz - 14], r=rng.uniform(1.2, 3.0),
                          hu=rng.uniform(120, 450)))
    if rng.random() < 0.55:  # choroid plexus in the atria: bright dot inside the ventricle
        for side in (-1, 1):
            if rng.random() < 0.8:
                calcs.append(dict(where="choroid", c=[side * (s["vent"]["vx"] + 2), vy + 0.55 * by, vz - 3],
                                  r=rng.uniform(1.2, 3.2), hu=rng.uniform(100, 350)))
    if rng.random() < 0.2:
        calcs.append(dict(where="falx", c=[0.0, rng.uniform(-30, 30), rng.uniform(35, 60)],
                          r=rng.uniform(1.0, 2.5), hu=rng.uniform(150, 500)))
    if rng.random() < 0.15:
        for side in (-1, 1):
            calcs.append(dict(where="basal_ganglia", c=[side * rng.uniform(16, 22), rng.uniform(-6, 4), rng.uniform(-8, 2)],
                              r=rng.uniform(1.0, 2.5), hu=rng.uniform(90, 250)))
    s["calcifications"] = calcs

    # --- lesions: about half normal, else 1-3 subtypes, each subtype in a fair share of studies
    types: list[str] = []
    if rng.random() >= 0.5:
        k = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20]))
        names = list(_TYPE_WEIGHTS)
        w = np.array([_TYPE_WEIGHTS[n] for n in names])
        types = [str(t) for t in rng.choice(names, size=k, replace=False, p=w / w.sum())]
    lesions = []
    par = (s["gm"] + s["wm"]) / 2
    for t in sorted(types):
        n_inst = 1 + int(rng.random() < (0.35 if t in ("intraparenchymal", "subarachnoid") else 0.12))
        for _ in range(n_inst):
            sz = rng.uniform(1.0 - 0.6 * d, 1.0)
            if t == "epidural":
                u = _convexity_dir(rng)
                T = math.exp(rng.uniform(math.log(4), math.log(24))) * sz
                L = rng.uniform(15, 38) * math.sqrt(sz)
                les = dict(type=t, u=u, T=T, L=L, hu=_blood_hu(rng, 60, 90, d, par),
                           volume_ml=math.pi * L * L * T / 2 / 1000)
            elif t == "subdural":
                u = _convexity_dir(rng)
                T = math.exp(rng.uniform(math.log(2.5), math.log(15))) * sz
                L = rng.uniform(35, 70) * math.sqrt(sz)
                chronic = bool(rng.random() < 0.12)
                hu = rng.uniform(18, 30) if chronic else _blood_hu(rng, 55, 85, d, par)
                les = dict(type=t, u=u, T=T, L=L, hu=float(hu), chronic=chronic,
                           volume_ml=2 / 3 * math.pi * L * L * T / 1000)
            elif t == "intraparenchymal":
                where = rng.choice(["deep", "lobar", "lobar", "cerebellar"])
                if where == "deep":
                    c = [rng.choice([-1, 1]) * rng.uniform(12, 24), rng.uniform(-10, 12), rng.uniform(-6, 8)]
                elif where == "cerebellar":
                    c = [rng.uniform(-25, 25), rng.uniform(0.35, 0.5) * B, -0.45 * C]
                else:
                    v = np.array(_convexity_dir(rng)) * np.array([A, B, C]) * rng.uniform(0.45, 0.7)
                    c = [float(x) for x in v]
                r = math.exp(rng.uniform(math.log(2.0), math.log(24))) * sz
                radii = [r * rng.uniform(0.7, 1.0), r * rng.uniform(0.75, 1.15), r * rng.uniform(0.6, 1.0)]
                les = dict(type=t, where=str(where), c=[float(x) for x in c], radii=radii,
                           lobes=[[float(x) for x in rng.normal(size=3)] + [rng.uniform(0, 6.3)] for _ in range(2)],
                           edema=rng.uniform(0, 5) * sz, hu=_blood_hu(rng, 55, 85, d, par),
                           volume_ml=4 / 3 * math.pi * radii[0] * radii[1] * radii[2] / 1000)
            elif t == "intraventricular":
                mode = "layer" if rng.random() < 0.5 else "cast"
                les = dict(type=t, mode=mode, hu=_blood_hu(rng, 50, 80, d, par),
                           level=rng.uniform(0.25, 0.8),  # layering: posterior fraction of the ventricle
                           c=[rng.choice([-1, 1]) * s["vent"]["vx"], vy + rng.uniform(-0.6, 0.6) * by, vz],
                           R=rng.uniform(6, 30) * sz, volume_ml=0.0)
            else:  # subarachnoid
                basal = rng.random() < 0.45
                if basal:
                    c = [rng.uniform(-10, 10), rng.uniform(-10, 10), -0.28 * C]
                else:
                    c = [float(x) for x in np.array(_convexity_dir(rng)) * np.array([A, B, C]) * 0.8]
                les = dict(type=t, basal=bool(basal), c=c, R=rng.uniform(15, 50) * sz,
                           widen=rng.uniform(0.5, 1.5), hu=_blood_hu(rng, 50, 75, d, par), volume_ml=0.0)
            lesions.append(les)
    s["lesions"] = lesions
    # --- mass effect and midline shift from the space-occupying volume
    occupying = [le for le in lesions if le["type"] in ("epidural", "subdural", "intraparenchymal")]
    vol = float(sum(le["volume_ml"] for le in occupying))
    shift = float(np.clip((vol - 8.0) * 0.2, 0.0, 15.0))
    if occupying:
        big = max(occupying, key=lambda le: le["volume_ml"])
        if big["type"] == "intraparenchymal":
            side = math.copysign(1.0, big["c"][0] or 1.0)
            ys, zs = big["c"][1], big["c"][2]
        else:
            side = math.copysign(1.0, big["u"][0])
            ys, zs = big["u"][1] * B * 0.8, big["u"][2] * C * 0.8
    else:
        side, ys, zs = 1.0, 0.0, 0.0
    s["mass"] = dict(volume_ml=vol, shift_mm=shift, side=side, y=ys, z=min(zs, s["vent"]["vz"] + 10),
                     compress=float(min(0.65, vol / 90.0)))
    # --- calvarial fracture (often under an EDH), with a scalp haematoma
    p_frac = 0.05 if not lesions else (0.7 if "epidural" in types else 0.25)
    fracs = []
    if rng.random() < p_frac:
        edh = [le for le in lesions if le["type"] == "epidural"]
        u = np.array(edh[0]["u"]) if edh and rng.random() < 0.8 else np.array(_convexity_dir(rng))
        u = u + rng.normal(size=3) * 0.08
        u = _unit(u)
        n = _unit(np.cross(u, rng.normal(size=3)))
        fracs.append(dict(u=[float(x) for x in u], n=[float(x) for x in n], w=rng.uniform(1.5, 3.5),
                          L=rng.uniform(20, 55), swell=rng.uniform(2, 8)))
    s["fractures"] = fracs
    return _plain(s)


def _plain(o: Any) -> Any:
    """Python scalars only: JSON-serialisable, and no float64 upcasting of float32 fields."""
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return _plain(o.tolist())
    if isinstance(o, np.generic):
        return o.item()
    return o


# ----------------------------------------------------------------------------- rendering

def _soft(sd: np.ndarray, px: float) -> np.ndarray:
    """Occupancy from a signed distance in mm (positive inside): a one-pixel linear ramp."""
    return np.clip(sd * (1.0 / px) + 0.5, 0.0, 1.0).astype(_F32, copy=False)


def _min(*arrays: np.ndarray) -> np.ndarray:
    out = np.minimum(arrays[0], arrays[1])
    for a in arrays[2:]:
        np.minimum(out, a, out=out)
    return out


def _max(*arrays: np.ndarray) -> np.ndarray:
    out = np.maximum(arrays[0], arrays[1])
    for a in arrays[2:]:
        np.maximum(out, a, out=out)
    return out


def _mix(base: np.ndarray, value: np.ndarray | float, occ: np.ndarray) -> np.ndarray:
    return base + (value - base) * occ


def _ellipsoid_sd(X, Y, Z, c, radii):
    q = np.sqrt(((X - c[0]) / radii[0]) ** 2 + ((Y - c[1]) / radii[1]) ** 2 + ((Z - c[2]) / radii[2]) ** 2)
    return (1.0 - q) * min(radii)


def _render(s: dict[str, Any], zs: np.ndarray, size: int, thickness: float, *,
            contrast: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Noise-free HU, lesion and distractor occupancies, and tissue labels at world slices `zs`."""
    px = float(s["fov"]) / size
    A, B, C = s["A"], s["B"], s["C"]
    R = _rot(*(math.radians(a) for a in s["tilt_deg"]))
    Rt = R.T.astype(_F32)
    cen = np.asarray(s["center"], dtype=_F32)
    coords = (np.arange(size, dtype=_F32) - (size - 1) / 2) * px
    xw = coords[None, None, :] - cen[0]
    yw = coords[None, :, None] - cen[1]
    zw = zs.astype(_F32)[:, None, None] - cen[2]
    # head frame p = R^T (w - c)
    X = Rt[0, 0] * xw + Rt[0, 1] * yw + Rt[0, 2] * zw
    Y = Rt[1, 0] * xw + Rt[1, 1] * yw + Rt[1, 2] * zw
    Z = Rt[2, 0] * xw + Rt[2, 1] * yw + Rt[2, 2] * zw
    full_shape = X.shape
    r = np.sqrt((X / A) ** 2 + (Y / B) ** 2 + (Z / C) ** 2) + _F32(1e-6)
    # every field below is element-wise: evaluate it on the voxels in and around the head only
    swell = max([f["swell"] for f in s["fractures"]], default=0.0)
    sel = r < 1.0 + (2.5 * px + swell) / min(A, B, C)
    X, Y, Z, r = X[sel], Y[sel], Z[sel], r[sel]
    rho = np.sqrt(X * X + Y * Y + Z * Z) + _F32(1e-3)
    Rray = rho / r
    depth = Rray - rho  # mm below the scalp surface along the radial ray
    ux, uy, uz = X / rho, Y / rho, Z / rho

    # ---- fractures and scalp swelling over them
    scalp_t = np.full_like(X, s["scalp_t"])
    frac_occ = np.zeros_like(X)
    for f in s["fractures"]:
        lf = np.sqrt((ux - f["u"][0]) ** 2 + (uy - f["u"][1]) ** 2 + (uz - f["u"][2]) ** 2) * Rray
        bump = f["swell"] * np.exp(-(lf / 30.0) ** 2)  # haematoma: the scalp bulges outward
        scalp_t = scalp_t + bump
        depth = depth + bump
        dplane = np.abs(ux * f["n"][0] + uy * f["n"][1] + uz * f["n"][2]) * Rray
        frac_occ = np.maximum(frac_occ, _soft(f["w"] / 2 - dplane, px) * _soft(f["L"] - lf, px))
    skull_t = np.full_like(X, s["skull_t"])
    for kx, ky, kz, ph, a in s["skull_mod"]:
        skull_t = skull_t * (1 + a * np.cos(kx * ux + ky * uy + kz * uz + ph))
    d_in = scalp_t + skull_t
    di = depth - d_in  # depth below the inner table

    # ---- skull base: anterior fossa (orbital roofs) -> middle fossa (sella higher centrally)
    # -> petrous ridges (a forward-pointing V) -> posterior fossa
    ax_ = np.abs(X)
    ridge_y = -0.02 * B + 0.5 * np.maximum(ax_ - 12.0, 0)
    ant = 1 - _smoothstep(Y / B, -0.45, -0.28)
    mid_z = C * (-0.47 + 0.08 * (1 - _smoothstep(ax_, 8, 20)))
    floor = ant * C * (-0.30 + 0.03 * np.cos(ax_ * 0.12)) + (1 - ant) * mid_z
    post = _smoothstep(Y - ridge_y, 2.0, 9.0)
    floor = floor * (1 - post) + post * (-0.64 * C)
    floor = floor + 0.10 * C * np.exp(-(((Y - ridge_y) / 3.5) ** 2)) * _smoothstep(ax_, 12, 20)
    above = Z - floor
    ic_sd = np.minimum(di, above)

    # ---- air, scalp, skull
    hu = np.full_like(X, -1000.0)
    hu = _mix(hu, 40.0, _soft(depth, px))
    fat = _soft(np.minimum(depth - 1.5, scalp_t - 1.5 - depth), px)
    hu = _mix(hu, -80.0, fat)
    trel = np.clip((depth - scalp_t) / skull_t, 0, 1)
    bone = s["diploe"] + (s["cortical"] - s["diploe"]) * np.clip((np.abs(trel - 0.5) - 0.15) / 0.12, 0, 1)
    bone = bone * (1 + 0.12 * np.cos(0.9 * X + 1.3 * Y) * np.cos(1.1 * Z - 0.7 * X))
    skull_occ = _soft(np.minimum(depth - scalp_t, d_in - depth), px)
    # the fossa floors are a bone plate; below it soft tissue with air cells (sinuses, mastoids)
    base_occ = _soft(_min(-above, above + s["skull_t"] * 1.3, di + skull_t), px)
    below_occ = _soft(_min(-above - s["skull_t"] * 1.3, di + skull_t), px)
    n_air = np.zeros_like(X)
    for kx, ky, kz, ph in s["sulc_k"]:
        n_air = n_air + np.cos(2.2 * (kx * X + ky * Y + kz * Z) + ph)
    sinus_region = _max(_soft(_min(18 - ax_, -0.05 * B - Y), 3.0), _soft(_min(ax_ - 0.55 * A, Y - 0.05 * B), 3.0))
    cells = _soft(n_air - 0.6, 0.3) * sinus_region
    base_val = _mix(np.full_like(X, 25.0), -950.0, cells)
    hu = _mix(hu, bone, skull_occ * (1 - frac_occ))
    hu = _mix(hu, 30.0, skull_occ * frac_occ)
    hu = _mix(hu, bone, base_occ)
    hu = _mix(hu, base_val, below_occ)

    # ---- midline (possibly shifted) frame for midline structures
    m = s["mass"]
    shift = m["shift_mm"] * np.exp(-((Y - m["y"]) ** 2) / (2 * 40.0 ** 2) - ((Z - m["z"]) ** 2) / (2 * 35.0 ** 2))
    shift = shift * np.clip(di / 25.0, 0, 1)
    Xm = X + m["side"] * shift  # structures move away from the lesion side (toward -side)
    v = s["vent"]

    # ---- brain: white matter, cortex, sulci, deep grey
    brain = np.full_like(X, s["wm"])
    gm_occ = _soft(s["csf_film"] + s["gm_t"] - di, px)
    n = np.zeros_like(X)
    kn = 0.0
    for kx, ky, kz, ph in s["sulc_k"]:
        n = n + np.cos(kx * X + ky * Y + kz * Z + ph)
        kn += math.sqrt(kx * kx + ky * ky + kz * kz)
    kn /= len(s["sulc_k"])
    dsul = np.abs(n) * (1.0 / (kn * math.sqrt(len(s["sulc_k"]) / 2)))  # ~ mm to the sulcal sheet
    sulc_band = _soft(s["sulc_depth"] - di, px)
    # SAH widens the sulci it fills
    widen = np.zeros_like(X)
    sah_regions = []
    for le in s["lesions"]:
        if le["type"] == "subarachnoid":
            reg = _soft(le["R"] - np.sqrt((X - le["c"][0]) ** 2 + (Y - le["c"][1]) ** 2 + (Z - le["c"][2]) ** 2), 4.0)
            sah_regions.append((le, reg))
            widen = np.maximum(widen, reg * le["widen"])
    gm_occ = np.maximum(gm_occ, _soft(s["sulc_half"] + 3.0 - dsul, px) * _soft(s["sulc_depth"] + 3 - di, px))
    brain = _mix(brain, s["gm"], gm_occ)
    for side in (-1, 1):
        brain = _mix(brain, s["gm"] - 2.0, _soft(_ellipsoid_sd(Xm, Y, Z, (side * 19.0, 0.0, -2.0), (7.0, 16.0, 9.0)), px))
    # cerebellum (posterior fossa) slightly denser than white matter
    brain = _mix(brain, s["gm"] - 3.0, _soft(np.minimum(-(Z + 0.3 * C), Y - 0.05 * B), 4.0) * (1 - gm_occ))

    # ---- CSF spaces
    sulci = _soft(s["sulc_half"] * (1 + widen) - dsul, px) * sulc_band
    film = _soft(s["csf_film"] * (1 + 0.5 * widen) - di, px)
    fiss = _soft(np.minimum(s["fissure_half"] * (1 + widen) - np.abs(Xm),
                            np.maximum(Z - (v["vz"] + 12), np.abs(Y) - 0.5 * B)), px)
    syl = np.zeros_like(X)
    for side in (-1, 1):
        dd = np.abs(Y + 2.0 - 0.35 * (side * X - 30))
        syl = np.maximum(syl, _soft(_min(1.2 * (1 + widen) - dd, side * X - 25, 14 - np.abs(Z + 8)), px))
    zc = -0.28 * C
    rm = np.sqrt((Xm / 12.0) ** 2 + ((Y - 8) / 10.0) ** 2) * 11.0
    cist = _soft(np.minimum(2.5 * (1 + 0.6 * widen) - np.abs(rm - 13.5), 9 - np.abs(Z - zc)), px)
    cist = np.maximum(cist, _soft(np.minimum(8 * (1 + 0.3 * widen) - np.sqrt(Xm ** 2 + (Y + 10) ** 2), 5 - np.abs(Z - zc - 4)), px))
    sub_csf = _max(sulci, film, fiss, syl, cist)
    # ventricles (ipsilateral compression under mass effect)
    vent = np.zeros_like(X)
    for side in (-1, 1):
        ax = v["ax"] * (1 - m["compress"] if side == m["side"] else 1 + 0.3 * m["compress"])
        zq = Z - v["vz"] + v["kappa"] * (Y - v["vy"]) ** 2
        q = np.sqrt(((Xm - side * (v["vx"] + ax * 0.3)) / ax) ** 2 + ((Y - v["vy"]) / v["by"]) ** 2 + (zq / v["cz"]) ** 2)
        vent = np.maximum(vent, _soft((1 - q) * ax, px))
    third = np.minimum(0.8 + 1.5 * s["atrophy"] - np.abs(Xm),
                       (1 - np.sqrt(((Y - v["vy"] - 4) / 11.0) ** 2 + ((Z - v["vz"] + 20) / 9.0) ** 2)) * 9.0)
    vent = np.maximum(vent, _soft(third, px))
    vent = np.maximum(vent, _soft(_ellipsoid_sd(Xm, Y, Z, (0.0, 0.3 * B, -0.45 * C), (5.0, 4.0, 7.0)), px))
    csf_all = np.maximum(sub_csf, vent)
    brain = _mix(brain, s["csf"], csf_all)
    # dense dural sinus (superior sagittal), enhancing after contrast
    sinus = _soft(_min(4.0 - np.abs(Xm), 5.0 - di, Y, Z), px)
    brain = _mix(brain, (s["sinus_hu"] + 120.0) if contrast else s["sinus_hu"], sinus)
    if contrast:
        brain = brain + 4.0 * gm_occ + 2.0

    # ---- beam hardening: bright rim under the inner table, dark streaks at the skull base
    brain = brain + s["bh_amp"] * np.exp(-np.maximum(di, 0) / s["bh_len"])
    brain = brain - s["streak_amp"] * np.exp(-((Y - 0.12 * B) ** 2) / 30.0 - ((Z + 0.5 * C) ** 2) / 60.0)

    # ---- distractors: calcifications (z partial volume of small spheres across the slab)
    calc = np.zeros_like(X)
    for c in s["calcifications"]:
        cc = np.array(c["c"], dtype=float)
        if c["where"] in ("pineal", "choroid", "basal_ganglia"):
            cc[0] -= m["side"] * float(m["shift_mm"]) * 0.8
        o = _sphere_pv(X, Y, Z, cc, c["r"], thickness, px)
        calc = np.maximum(calc, o)
        val = c["hu"] + (100.0 if contrast and c["where"] == "choroid" else 0.0)
        brain = _mix(brain, val, o)

    # ---- lesions
    les_occ = {k: np.zeros_like(X) for k in RSNA_SUBTYPES}
    for le in s["lesions"]:
        t = le["type"]
        if t in ("epidural", "subdural"):
            u = le["u"]
            lq = np.sqrt((ux - u[0]) ** 2 + (uy - u[1]) ** 2 + (uz - u[2]) ** 2) * Rray / le["L"]
            prof = 1 - lq ** 2 if t == "epidural" else 1 - lq ** 4
            o = _soft(np.minimum(le["T"] * prof - di, di + 0.5), px)
        elif t == "intraparenchymal":
            sd = _ellipsoid_sd(X, Y, Z, le["c"], le["radii"])
            for kx, ky, kz, ph in le["lobes"]:
                sd = sd + 0.12 * min(le["radii"]) * np.cos(0.25 * (kx * X + ky * Y + kz * Z) + ph)
            o = _soft(sd, px) * (1 - vent)
            if le["edema"] > 0:
                brain = brain - 9.0 * (_soft(sd + le["edema"], px) - o) * (1 - csf_all)
        elif t == "intraventricular":
            if le["mode"] == "layer":
                y0 = v["vy"] + v["by"] * (1 - 2 * le["level"])
                reg = _soft(Y - y0, px)
            else:
                reg = _soft(le["R"] - np.sqrt((Xm - le["c"][0]) ** 2 + (Y - le["c"][1]) ** 2 + (Z - le["c"][2]) ** 2), px)
            o = vent * reg
        else:
            reg = next(rg for lz, rg in sah_regions if lz is le)
            o = sub_csf * reg * (1 - vent)
        brain = _mix(brain, le["hu"], o)
        les_occ[t] = np.maximum(les_occ[t], o)

    ic = _soft(ic_sd, px)
    hu = _mix(hu, brain, ic)
    occs = {k: o * ic for k, o in les_occ.items()}
    occs[FRACTURE] = frac_occ * skull_occ
    tissue = np.zeros(X.shape, np.uint8)
    tissue[_soft(depth, px) >= 0.5] = TISSUES["soft_tissue"]
    tissue[(below_occ >= 0.5) & (cells >= 0.5)] = TISSUES["air"]
    tissue[np.maximum(skull_occ * (1 - frac_occ), base_occ) >= 0.5] = TISSUES["bone"]
    inside = ic >= 0.5
    tissue[inside] = TISSUES["white_matter"]
    tissue[inside & (gm_occ >= 0.5)] = TISSUES["grey_matter"]
    tissue[inside & (csf_all >= 0.5)] = TISSUES["csf"]
    tissue[inside & (vent >= 0.5)] = TISSUES["ventricle"]
    tissue[inside & (calc >= 0.5)] = TISSUES["calcification"]
    return (_scatter(hu, sel, full_shape, -1000.0), {k: _scatter(o, sel, full_shape, 0.0) for k, o in occs.items()},
            {"calcification": _scatter(calc * ic, sel, full_shape, 0.0)}, _scatter(tissue, sel, full_shape, 0))


def _scatter(values: np.ndarray, sel: np.ndarray, shape: tuple[int, ...], fill: float) -> np.ndarray:
    out = np.full(shape, fill, dtype=values.dtype if values.dtype == np.uint8 else _F32)
    out[sel] = values
    return out


def _smoothstep(x: np.ndarray, a: float, b: float) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


def _sphere_pv(X, Y, Z, c, r: float, thickness: float, px: float) -> np.ndarray:
    """Occupancy of a small sphere averaged over the slab thickness (head-frame z)."""
    rho2 = (X - c[0]) ** 2 + (Y - c[1]) ** 2
    h = np.sqrt(np.maximum(r * r - rho2, 0))
    lo = np.maximum(Z - thickness / 2, c[2] - h)
    hi = np.minimum(Z + thickness / 2, c[2] + h)
    frac_z = np.clip(hi - lo, 0, None) / thickness
    inplane = _soft(r - np.sqrt(rho2), px)
    return (np.minimum(1.0, frac_z * 1.6) * inplane).astype(_F32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float, corr_px: float) -> np.ndarray:
    """CT-like noise: white Gaussian smoothed in-plane (correlated), rescaled to `sd`."""
    w = rng.standard_normal(shape, dtype=_F32)
    if corr_px > 0.05:
        w = ndimage.gaussian_filter(w, sigma=(0, corr_px, corr_px), mode="wrap")
        w *= _F32(sd * 2 * math.sqrt(math.pi) * corr_px)  # unit variance after the filter
    else:
        w *= _F32(sd)
    return w


# ----------------------------------------------------------------------------- public API

def study_slices(s: dict[str, Any], spacing_factor: float = 1.0, n_slices: int | None = None) -> np.ndarray:
    """World z (mm, head-centred) of the slices covering the subject's head."""
    C = s["C"]
    z_lo, z_hi = -0.52 * C, 0.98 * C
    n = int(n_slices or round(s["n_slices"] / spacing_factor))
    dz = (z_hi - z_lo) / n
    return (z_lo + (np.arange(n) + 0.5) * dz).astype(np.float64)


def render_series(
    subject: dict[str, Any], size: int, *, seed: int, spacing_factor: float = 1.0,
    n_slices: int | None = None, kernel: str = "soft", contrast: bool = False, series_key: str = "",
) -> PhantomStudy:
    """Render one series of a drawn subject (the CQ500 writer renders several per subject)."""
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    zs = study_slices(subject, spacing_factor, n_slices)
    dz = float(zs[1] - zs[0]) if len(zs) > 1 else 5.0
    thickness = dz
    # slab partial volume: thick slices average two sub-slices (masks: >= half the slab)
    n_sub = 2 if thickness > 2.5 else 1
    offsets = [(j + 0.5) / n_sub - 0.5 for j in range(n_sub)]
    chunk = max(1, int(1_500_000 // (size * size)))
    hu_parts, occ_parts, dis_parts = [], {k: [] for k in MASK_KEYS}, {k: [] for k in DISTRACTOR_KEYS}
    tissue_parts = []
    for i in range(0, len(zs), chunk):
        acc_h, acc_o, acc_d, tis = None, None, None, None
        for off in offsets:
            h, o, dd, t = _render(subject, zs[i:i + chunk] + off * thickness, size, thickness / n_sub,
                                  contrast=contrast)
            if acc_h is None:
                acc_h, acc_o, acc_d, tis = h, o, dd, t
            else:
                acc_h += h
                for k in MASK_KEYS:
                    acc_o[k] += o[k]
                for k in DISTRACTOR_KEYS:
                    acc_d[k] += dd[k]
        hu_parts.append(acc_h / n_sub)
        tissue_parts.append(tis)
        for k in MASK_KEYS:
            occ_parts[k].append(acc_o[k] >= 0.5 * n_sub)
        for k in DISTRACTOR_KEYS:
            dis_parts[k].append(acc_d[k] >= 0.5 * n_sub)
    hu = np.concatenate(hu_parts)
    key = int.from_bytes(hashlib.sha1(series_key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([int(seed), 0xA015E, key])
    # thinner slices collect fewer photons: noise grows like 1/sqrt(thickness)
    sd = subject["noise_sd"] * (3.0 if kernel == "bone" else 1.0) / math.sqrt(min(1.0, spacing_factor))
    corr = subject["noise_corr"] * (0.35 if kernel == "bone" else 1.0) * (size / 256.0) ** 0.5
    hu += _noise(rng, hu.shape, sd, corr)
    masks = {k: np.concatenate(v) for k, v in occ_parts.items()}
    distractors = {k: np.concatenate(v) for k, v in dis_parts.items()}

    mp = min_pixels(size)
    counts = {k: masks[k].sum(axis=(1, 2)) for k in MASK_KEYS}
    sl = pd.DataFrame({k: (counts[k] >= mp).astype(np.int8) for k in RSNA_SUBTYPES})
    sl.insert(0, "any", sl[list(RSNA_SUBTYPES)].max(axis=1).astype(np.int8))
    sl[FRACTURE] = (counts[FRACTURE] >= mp).astype(np.int8)
    sl = sl[list(RSNA_CLASSES) + [FRACTURE]]

    px = float(subject["fov"]) / size
    half = (size - 1) / 2 * px
    x0 = -half
    y0 = -half
    positions = np.stack([np.full(len(zs), x0), np.full(len(zs), y0), zs + subject["z_offset"]], axis=1)
    study = PhantomStudy(
        seed=int(seed), size=int(size), difficulty=float(subject["difficulty"]), hu=hu, masks=masks,
        distractors=distractors, tissue=np.concatenate(tissue_parts), slice_labels=sl, study_labels={}, spacing=(dz, px, px),
        positions=positions, slice_thickness=thickness,
        params=dict(version=GENERATOR_VERSION, seed=int(seed), size=int(size),
                    difficulty=float(subject["difficulty"]), kernel=kernel, contrast=contrast,
                    spacing_factor=spacing_factor, subject=subject),
    )
    study.study_labels = study_truth(subject, sl)
    return study


def study_truth(subject: dict[str, Any], slice_labels: pd.DataFrame | None = None) -> dict[str, int]:
    """Study-level truth: the 14 CQ500 reader fields and the six RSNA classes.

    Subtype presence comes from the rendered slice labels when given (a lesion too small to
    reach `min_pixels` on any slice is not called present), else from the drawn lesions.
    """
    if slice_labels is not None:
        present = {t: int(slice_labels[t].max()) for t in RSNA_SUBTYPES}
        frac = int(slice_labels[FRACTURE].max()) if FRACTURE in slice_labels else int(bool(subject["fractures"]))
    else:
        types = {le["type"] for le in subject["lesions"]}
        present = {t: int(t in types) for t in RSNA_SUBTYPES}
        frac = int(bool(subject["fractures"]))
    out: dict[str, int] = {f: 0 for f in CQ500_READ_FIELDS}
    for t, short in RSNA_TO_CQ500.items():
        out[short] = present[t]
    out["ICH"] = int(any(present.values()))
    sides = {("BleedLocation-Left" if _lesion_x(le) > 0 else "BleedLocation-Right")
             for le in subject["lesions"] if present[le["type"]]}
    for sname in sides:
        out[sname] = 1
    out["ChronicBleed"] = int(any(le.get("chronic") for le in subject["lesions"] if present[le["type"]]))
    out["CalvarialFracture"] = frac
    out["Fracture"] = frac
    m = subject["mass"]
    out["MidlineShift"] = int(m["shift_mm"] >= 2.5 and out["ICH"] == 1)
    out["MassEffect"] = int((m["volume_ml"] >= 15.0 or m["shift_mm"] >= 2.5) and out["ICH"] == 1)
    for t in RSNA_SUBTYPES:
        out[t] = present[t]
    out["any"] = out["ICH"]
    return out


def _lesion_x(le: dict[str, Any]) -> float:
    """Patient-left is +x (DICOM LPS)."""
    if "u" in le:
        return le["u"][0]
    return le["c"][0]


def draw_subject(seed: int, difficulty: float = 0.5) -> dict[str, Any]:
    """The subject's random parameters (JSON-serialisable); same seed, same subject."""
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    return _draw_subject(seed, difficulty)


def make_head_study(seed: int, size: int = 256, difficulty: float = 0.5, *,
                    n_slices: int | None = None, spacing_factor: float = 1.0, kernel: str = "soft",
                    contrast: bool = False) -> PhantomStudy:
    """A deterministic synthetic non-contrast head CT (thick axial series) for `seed`.

    `n_slices` overrides the subject's slice count (24-40 by default) and `spacing_factor`
    scales the slice spacing (0.5: a thin series of the same head); `kernel="bone"` gives the
    sharper, noisier bone reconstruction; `contrast=True` a post-contrast look. The RSNA
    writer's study `i` is exactly `make_head_study(study_seed(seed, i), size, difficulty)`.
    """
    if kernel not in ("soft", "bone"):
        raise ValueError(f"kernel must be 'soft' or 'bone', got {kernel!r}")
    subject = draw_subject(seed, difficulty)
    key = "" if (n_slices, spacing_factor, kernel, contrast) == (None, 1.0, "soft", False) else \
        f"{kernel}-{contrast}-{n_slices}-{spacing_factor}"
    return render_series(subject, size, seed=seed, n_slices=n_slices, spacing_factor=spacing_factor,
                         kernel=kernel, contrast=contrast, series_key=key)
