"""Rendering of the synthetic head CT (`head_ct`): analytic signed-distance fields evaluated
on the voxel grid with one-pixel soft edges, lesions and distractors, noise and artefacts."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from brainlib.data.classes import RSNA_SUBTYPES
from brainlib.data.synth.head_anatomy import _F32, FRACTURE, TISSUES, _rot



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

