"""Scale measurements behind docs/scale.md (issue 15): what the real datasets cost to ingest.

  csv      write an RSNA-layout ``stage_2_train.csv`` with the real row count (752,803 images x 6
           labels + duplicated rows) and parse + index it with ``read_rsna_csv`` in a child
           process: wall and CPU seconds, peak resident memory, bytes of the index.
  headers  write N phantom DICOM files (copies of a few phantom slices with altered UIDs, so
           writing is cheap) and index them with ``brainlib.io.scan_folder`` (headers only):
           files/s per core, bytes per file on disk, bytes read per file, index bytes per row.
  decode   decode + window + resize real-size (512 x 512) slices on the fly
           (``brainlib.data.pixels.read_slice``, the loader's uncached path): slices/s per core.
  flops    forward+backward FLOPs per case of each paper's network at its full-profile size.

Each prints one JSON object. ``all`` runs everything and prints the combined JSON.
Usage: python benchmarks/bench_scale.py all [--files 20000] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RSNA_IMAGES = 752_803
DUPLICATE_ROWS = 24  # the published file repeats some rows; loaders must drop them


def write_rsna_csv(path: Path, n_images: int = RSNA_IMAGES, seed: int = 0) -> int:
    """An RSNA-layout CSV (``ID,Label``, six rows per image, ~14 % positive 'any'); rows written."""
    import pandas as pd

    from brainlib.data.classes import RSNA_CLASSES

    rng = np.random.default_rng(seed)
    ids = np.char.add("ID_", np.char.mod("%09x", rng.choice(16**9, n_images, replace=False)))
    subtypes = list(RSNA_CLASSES)
    any_pos = rng.random(n_images) < 0.14
    labels = (rng.random((n_images, len(subtypes))) < 0.05) & any_pos[:, None]
    labels[:, subtypes.index("any")] = any_pos
    rows = np.char.add(np.char.add(np.repeat(ids, len(subtypes)), "_"), np.tile(subtypes, n_images))
    df = pd.DataFrame({"ID": rows, "Label": labels.reshape(-1).astype(np.int8)})
    df = pd.concat([df, df.iloc[rng.choice(len(df), DUPLICATE_ROWS, replace=False)]])
    df.to_csv(path, index=False)
    return len(df)


def parse_csv(path: Path) -> dict:
    """Parse and index ``path`` in this process (call in a child for a clean peak RSS)."""
    from brainlib.data.rsna import read_rsna_csv

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    w0, c0 = time.perf_counter(), time.process_time()
    wide = read_rsna_csv(path)
    probe = wide.index[np.random.default_rng(0).choice(len(wide), 100_000)]
    found = wide.index.get_indexer(probe)  # id -> row lookups, as a dataset does
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"rows_file": sum(1 for _ in open(path)) - 1, "images": len(wide),
            "parse_index_wall_s": round(wall, 2), "parse_index_cpu_s": round(cpu, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_mb": round(rss0 / 1024, 1),
            "index_mb": round(wide.memory_usage(deep=True).sum() / 2**20, 1),
            "lookups_ok": bool((found >= 0).all()), "csv_mb": round(path.stat().st_size / 2**20, 1)}


def bench_csv(workdir: Path, n_images: int = RSNA_IMAGES) -> dict:
    path = workdir / "stage_2_train.csv"
    t0 = time.perf_counter()
    rows = write_rsna_csv(path, n_images)
    written = time.perf_counter() - t0
    out = subprocess.run([sys.executable, __file__, "parse-csv", str(path)], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(rows_written=rows, write_s=round(written, 1))
    return result


_TEMPLATE_UID = "1.2.826.0.1.3680043.9.7777.{kind}.{n}"
_UID_BASE = 10**11  # every number 12 digits without a leading zero: fixed-length valid UIDs


def write_header_tree(root: Path, n_files: int, size: int = 64, per_series: int = 40) -> Path:
    """``n_files`` DICOMs: 4 phantom slices written once, copied with new fixed-length UIDs."""
    from brainlib.io.testing import write_ct_slice

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    templates = []
    for t in range(4):
        hu = rng.normal(30, 10, (size, size)).astype(np.float32)
        path = write_ct_slice(root / f"_template{t}.dcm", hu, sop_uid=_TEMPLATE_UID.format(kind=3, n=_UID_BASE + t),
                              study_uid=_TEMPLATE_UID.format(kind=1, n=_UID_BASE + t),
                              series_uid=_TEMPLATE_UID.format(kind=2, n=_UID_BASE + t), instance_number=1,
                              position=(0.0, 0.0, 5.0 * t))
        templates.append((t, Path(path).read_bytes()))
        Path(path).unlink()
    for i in range(n_files):
        t, data = templates[i % 4]
        series = i // per_series
        for kind, n in ((1, series), (2, series), (3, i)):
            data = data.replace(_TEMPLATE_UID.format(kind=kind, n=_UID_BASE + t).encode(),
                                _TEMPLATE_UID.format(kind=kind, n=_UID_BASE + n).encode())
        folder = root / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f"ID_{i:09x}.dcm").write_bytes(data)
    return root


def bench_headers(workdir: Path, n_files: int = 20_000, size: int = 64) -> dict:
    from brainlib.io import scan_folder

    root = workdir / "headers"
    t0 = time.perf_counter()
    write_header_tree(root, n_files, size)
    written = time.perf_counter() - t0
    files = list(root.rglob("*.dcm"))
    file_bytes = float(np.mean([p.stat().st_size for p in files[:200]]))
    pixel_bytes = size * size * 2
    w0, c0 = time.perf_counter(), time.process_time()
    index, skipped = scan_folder(root)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    shutil.rmtree(root)
    return {"files": len(files), "indexed": len(index), "skipped": len(skipped),
            "write_s": round(written, 1), "scan_wall_s": round(wall, 2), "scan_cpu_s": round(cpu, 2),
            "files_per_s_wall": round(len(index) / wall, 1),
            "files_per_cpu_s": round(len(index) / cpu, 1),
            "bytes_per_file": round(file_bytes), "header_bytes_per_file": round(file_bytes - pixel_bytes),
            "index_bytes_per_row": round(index.memory_usage(deep=True).sum() / max(len(index), 1))}


def bench_decode(workdir: Path, n: int = 40) -> dict:
    """On-the-fly decode + 3 windows + area resize of 512 px slices (the uncached loader path)."""
    from brainlib.data.pixels import read_slice
    from brainlib.io import BRAIN, SOFT_TISSUE, SUBDURAL
    from brainlib.io.testing import write_ct_slice

    rng = np.random.default_rng(1)
    folder = workdir / "decode"
    folder.mkdir(exist_ok=True)
    paths = [write_ct_slice(folder / f"s{i}.dcm", rng.normal(30, 300, (512, 512)).astype(np.float32),
                            instance_number=i + 1) for i in range(n)]
    out = {}
    for size in (512, 256, 224):
        read_slice(str(paths[0]), (BRAIN, SUBDURAL, SOFT_TISSUE), size)  # warm-up
        c0 = time.process_time()
        for p in paths:
            read_slice(str(p), (BRAIN, SUBDURAL, SOFT_TISSUE), size)
        out[f"slices_per_cpu_s_{size}"] = round(n / (time.process_time() - c0), 1)
    shutil.rmtree(folder)
    return out


def bench_flops() -> dict:
    from brainlib.experiment.estimate import flops_per_case, full_trainings, PAPERS_PLANNED

    out = {"resnet50_224": round(flops_per_case("resnet50", ((3, 224, 224),)) / 1e9, 2)}
    for paper in PAPERS_PLANNED:
        trainings, _ = full_trainings(paper)
        for t in trainings:
            out[f"{paper}: {t.label}"] = {
                "model": t.model, "input": t.inputs, "forward_only": t.forward_only,
                "gflop_per_case": round(flops_per_case(t.model, t.inputs, t.forward_only, **t.kwargs) / 1e9, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["all", "csv", "headers", "decode", "flops", "parse-csv"])
    ap.add_argument("path", nargs="?")
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--images", type=int, default=RSNA_IMAGES)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    if args.what == "parse-csv":
        print(json.dumps(parse_csv(Path(args.path))))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="brainlib-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = {}
        if args.what in ("all", "csv"):
            result["csv"] = bench_csv(work, args.images)
        if args.what in ("all", "headers"):
            result["headers"] = bench_headers(work, args.files)
        if args.what in ("all", "decode"):
            result["decode"] = bench_decode(work)
        if args.what in ("all", "flops"):
            result["flops"] = bench_flops()
        print(json.dumps(result, indent=1, default=str))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
