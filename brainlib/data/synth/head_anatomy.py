"""Anatomy and lesion parameters of the synthetic head CT (`head_ct`): the random subject
drawn per seed (head shape, skull, brain structures, lesions, distractors), as plain
JSON-serialisable values, and the label constants the renderer and writers share."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from brainlib.data.classes import RSNA_SUBTYPES

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

