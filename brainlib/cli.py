"""The `brainlib` command (also `python -m brainlib`).

Subcommands import their implementation lazily so `brainlib --help` stays instant.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from brainlib import PAPERS


def _synth(args: argparse.Namespace) -> int:
    from brainlib.data.synth import write_bonescan, write_cq500, write_rsna

    if args.layout == "bonescan":  # NM whole-body scans: --size is the matrix height (width / 4)
        size = args.size if args.size != 512 else 1024
        root = write_bonescan(Path(args.out), n_studies=args.studies, seed=args.seed,
                              shape=(size, size // 4), difficulty=args.difficulty)
        print(f"wrote bonescan phantoms to {root}")
        return 0
    if args.layout == "busi":  # PNG images + masks; --size is the nominal image height
        from brainlib.data.synth import write_busi

        root = write_busi(Path(args.out), n_images=args.images, seed=args.seed,
                          size=args.size if args.size != 512 else 256, difficulty=args.difficulty)
        print(f"wrote busi phantoms to {root}")
        return 0
    if args.layout == "deeplesion":  # 16-bit PNG body-CT slices + DL_info.csv; --studies = patients
        from brainlib.data.synth import write_deeplesion

        root = write_deeplesion(Path(args.out), n_patients=args.studies, seed=args.seed,
                                size=args.size, difficulty=args.difficulty)
        print(f"wrote deeplesion phantoms to {root}")
        return 0

    writer = {"rsna": write_rsna, "cq500": write_cq500}[args.layout]
    root = writer(Path(args.out), n_studies=args.studies, seed=args.seed, size=args.size,
                  difficulty=args.difficulty)
    print(f"wrote {args.layout} phantoms to {root}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from brainlib.engine.launch import dispatch_run
    from brainlib.runner import run_notebooks

    common = dict(profile=args.profile, only=args.only.split(",") if args.only else None,
                  data_root=args.data_root, device=args.device,
                  notebooks_dir=Path(args.notebooks), seed=args.seed,
                  wait=True if args.wait is not None and args.wait < 0 else (args.wait or False))
    if args.profile == "full" and os.environ.get("RANK") is None:  # the cost, before it starts
        from brainlib.experiment.estimate import full_run_text

        print(full_run_text([k for k in common["only"] or PAPERS if k in PAPERS]), flush=True)
    status = dispatch_run(args, run_notebooks, main, **common)  # --nproc N, or a rank of torchrun
    if status is not None:
        return status
    return run_notebooks(out_dir=Path(args.out), force=args.force, jobs=args.jobs, **common)


def _report(args: argparse.Namespace) -> int:
    from brainlib.report import write_report

    path = write_report(Path(args.out), notebooks_dir=Path(args.notebooks) if args.notebooks else None)
    print(f"wrote {path}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from brainlib.claims import audit, format_findings

    findings = audit(args.paper, out_dir=Path(args.out) if args.out else None)
    print(format_findings(findings, args.paper))
    return 0


def _models(args: argparse.Namespace) -> int:
    from brainlib.models import list_models

    print("\n".join(list_models(args.paper)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write synthetic head-CT phantoms in a real dataset layout")
    p.add_argument("layout", choices=["rsna", "cq500", "bonescan", "busi", "deeplesion"])
    p.add_argument("--out", required=True, help="dataset root to create")
    p.add_argument("--studies", type=int, default=20, help="number of studies (patients)")
    p.add_argument("--images", type=int, default=780, help="busi: number of images (BUSI has 780)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=512, help="slice size in pixels (square)")
    p.add_argument("--difficulty", type=float, default=0.5, help="0 easy .. 1 hard")
    p.set_defaults(func=_synth)

    p = sub.add_parser("run", help="execute the paper notebooks headlessly with papermill")
    p.add_argument("--profile", choices=["smoke", "quick", "full"], default="quick")
    p.add_argument("--only", default="", help="comma-separated notebook keys, e.g. he2024")
    p.add_argument("--data-root", default=None, help="real dataset root (default: phantoms)")
    p.add_argument("--out", default="outputs")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--force", action="store_true", help="re-run even if nothing changed")
    p.add_argument("--notebooks", default="notebooks", help="folder of notebooks")
    p.add_argument("--seed", type=int, default=None, help="override every notebook's seed")
    p.add_argument("--nproc", type=int, default=1,
                   help="training processes on this node (torch.distributed; docs/scale.md)")
    p.add_argument("--jobs", type=int, default=None,
                   help="notebooks run at once (default: one per CPU core for smoke/quick, 1 for "
                        "full); each keeps its own thread settings, so results do not change")
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="if another run is writing into --out, wait this long for it (-1: as long "
                        "as needed) instead of exiting with status 75")
    p.set_defaults(func=_run)

    p = sub.add_parser("report", help="write REPORT.md and REPORT.html from an outputs folder")
    p.add_argument("--out", default="outputs")
    p.add_argument("--notebooks", default=None,
                   help="folder of notebooks (to list papers with no notebook yet); default notebooks/")
    p.set_defaults(func=_report)

    p = sub.add_parser("audit", help="check a paper's internal arithmetic from its claims")
    p.add_argument("paper", choices=list(PAPERS))
    p.add_argument("--out", default=None, help="outputs folder; writes <out>/<paper>/tables/audit.csv")
    p.set_defaults(func=_audit)

    p = sub.add_parser("models", help="list registered models")
    p.add_argument("--paper", default=None, choices=list(PAPERS))
    p.set_defaults(func=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
