"""Run the notebooks headlessly with papermill (what ``./reproduce.sh`` does).

Each ``notebooks/<stem>.ipynb`` runs under the Jupyter kernel ``brainlib`` with the repo root as
working directory and writes into ``<out>/<key>/``, where ``key`` is the paper key the file
name starts with (``brainlib.PAPERS``) or else the stem. A failing notebook is recorded in
``<out>/<key>/status.json`` (the failing cell's error) and the next one still runs.

A notebook is skipped when nothing it depends on changed since its last success: its source,
its parameters, brainlib's code (every .py/.yaml under brainlib/ plus pyproject.toml) and its
data (the file listing with sizes and mtimes of a real root, or the phantoms, whose generator
is part of brainlib's code). ``force=True`` re-runs regardless.

Interruptions: ``status.json`` says ``running`` (with the runner's pid and host) while a notebook
runs; a killed run leaves it so, and the report shows it as interrupted once that process is
gone. The next run removes the temporary files a killed run left under the output folder
(:func:`brainlib._atomic.sweep_temp`), then reruns the notebook, whose trainings resume from
their checkpoints (:func:`brainlib.engine.fit`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

from brainlib._atomic import LockedError, atomic_path, atomic_write, sweep_temp
from brainlib.host import describe, host_profile, load_average
from brainlib.notebook_files import NotebookError, declared_parameters, find_notebooks, notebook_key
from brainlib.paths import repo_root
from brainlib.run_guard import EXIT_LOCKED, OutputLocationError, check_out_dir, output_lock
from brainlib.run_inputs import KERNEL_NAME, data_digest, input_hash, package_digest

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _error_record(exc: BaseException) -> dict[str, Any]:
    """The failing cell's error name, value and a short traceback (ANSI colours removed)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        tb = "\n".join(_ANSI.sub("", line) for line in exc.traceback)
        tb_lines = tb.splitlines()
        return {"ename": exc.ename, "evalue": exc.evalue, "cell_index": exc.cell_index,
                "exec_count": exc.exec_count,
                "source": "\n".join(exc.source.splitlines()[:20]),
                "traceback": "\n".join(tb_lines[-25:])}
    return {"ename": type(exc).__name__, "evalue": str(exc), "cell_index": None, "traceback": ""}


def check_kernel() -> str | None:
    """None if the `brainlib` kernel exists, else a message saying how to register it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return (f"Jupyter kernel '{KERNEL_NAME}' is not registered; run ./reproduce.sh (which "
                f"registers it) or: {sys.executable} -m ipykernel install --sys-prefix --name {KERNEL_NAME}")
    python = spec.argv[0] if spec.argv else ""
    if python and Path(python).exists() and Path(python).resolve() != Path(sys.executable).resolve():
        print(f"note: kernel '{KERNEL_NAME}' runs {python}, not this interpreter ({sys.executable})",
              flush=True)
    return None


def export_html(notebook: Path, html_path: Path) -> None:
    """The executed notebook as a page, its outputs' markup made inert (data strings such as a
    DICOM series description may reach an output): :mod:`brainlib.report.notebook_html`."""
    import nbformat

    from brainlib.report.notebook_html import notebook_to_html

    atomic_write(html_path, notebook_to_html(nbformat.read(str(notebook), as_version=4)))


def _update_manifest(folder: Path, files: Sequence[Path], seconds: float,
                     machine: dict[str, Any] | None = None) -> None:
    """Add the executed notebook, its HTML, the run time and the host it ran on
    (`brainlib.host`) to the notebook's manifest.json."""
    from brainlib.report import sha256_file

    manifest_path = folder / "manifest.json"
    manifest = _read_json(manifest_path)
    if manifest is None:
        return
    artifacts = manifest.setdefault("artifacts", {})
    for path in files:
        if path.exists():
            artifacts[path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest["run_seconds"] = round(seconds, 1)
    if machine is not None:
        manifest["machine"] = machine
    _write_json(manifest_path, manifest)


def run_notebook(notebook: Path, key: str, parameters: dict[str, Any], out_dir: Path,
                 digest: str, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute one notebook into ``out_dir`` and return its status record (also written).

    `machine`: the run's `brainlib.host.host_profile`, stored with the run time (the load
    average at the end is added), so that run times of different hosts can be compared."""
    import papermill

    from brainlib.report import clear_artifacts

    folder = out_dir
    folder.mkdir(parents=True, exist_ok=True)
    sweep_temp(folder)  # what a killed run left half-written (papermill output, checkpoints)
    clear_artifacts(folder)  # a failure must not be reported beside the last success's tables
    output = folder / notebook.name
    html_path = output.with_suffix(".html")
    status: dict[str, Any] = {"key": key, "notebook": str(notebook), "status": "running",
                              "started": _now(), "pid": os.getpid(), "host": socket.gethostname(),
                              "parameters": parameters, "input_hash": None,
                              "output_notebook": output.name, "html": html_path.name}
    if machine is not None:
        status["machine"] = dict(machine)
    _write_json(folder / "status.json", status)
    start = time.perf_counter()
    papermill_log = logging.getLogger("papermill")
    level = papermill_log.level
    papermill_log.setLevel(logging.ERROR)  # its "unknown parameter" warnings misread annotations
    try:
        # papermill rewrites its output after every cell: keep that in a temp file, rename at the end
        with atomic_path(output) as tmp, _headless():  # inherited by the kernel
            try:
                papermill.execute_notebook(
                    str(notebook), str(tmp), parameters=parameters, kernel_name=KERNEL_NAME,
                    cwd=str(repo_root()), progress_bar=False, log_output=False,
                    # keep the console to one line per notebook: no kernel start-up warnings,
                    # nor "ERROR | KeyboardInterrupt caught in kernel" (jupyter_client interrupts
                    # every kernel it shuts down; a busy host loses that race now and then).
                    # Cell errors and a dead kernel still reach status.json through papermill.
                    extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
            except Exception as exc:  # recorded; the notebook with its error banner is kept
                status["status"], status["error"] = "failed", _error_record(exc)
        if status["status"] == "running":
            status["status"], status["input_hash"] = "ok", digest
    except Exception as exc:  # papermill could not even write its output
        status["status"], status["error"] = "failed", _error_record(exc)
    finally:
        papermill_log.setLevel(level)
    seconds = time.perf_counter() - start
    if output.exists():
        try:
            export_html(output, html_path)
        except Exception as exc:  # an export problem must not hide the run's own status
            status["html"] = None
            status["html_error"] = f"{type(exc).__name__}: {exc}"
    status.update(finished=_now(), seconds=round(seconds, 1))
    if machine is not None:
        status["machine"]["load_1min_end"] = load_average()
    _update_manifest(folder, [output, html_path], seconds, status.get("machine"))
    _write_json(folder / "status.json", status)
    return status


def run_notebooks(profile: str = "quick", only: Sequence[str] | None = None,
                  data_root: str | os.PathLike[str] | None = None,
                  out_dir: str | os.PathLike[str] = "outputs", device: str = "auto",
                  force: bool = False, notebooks_dir: str | os.PathLike[str] = "notebooks",
                  seed: int | None = None, wait: bool | float = False,
                  jobs: int | None = 1) -> int:
    """Run every notebook (or the keys in `only`); return 0 if all succeeded, else 1.

    `jobs` notebooks run at once (None: `default_jobs`); each keeps its own thread settings,
    so a notebook's numbers do not depend on `jobs`, only the wall time does.

    Parameters passed are those the notebook declares among ``profile, data_root, out_dir
    (= <out>/<key>), device, seed`` (seed only when given). Prints one line per notebook.
    Refused with 2 if the output folder overlaps the data root, and with 75 if another run
    holds ``<out>/.lock`` (``wait``: seconds to wait for it, or True) (:mod:`brainlib.run_guard`).
    """
    nb_dir = Path(notebooks_dir)
    if not nb_dir.is_absolute() and not nb_dir.exists():
        nb_dir = repo_root() / nb_dir
    out = Path(out_dir).resolve()
    notebooks = find_notebooks(nb_dir)
    if not notebooks:
        print(f"error: no notebooks (*.ipynb) in {nb_dir}", file=sys.stderr)
        return 1
    keyed: dict[str, Path] = {}
    for nb in notebooks:
        key = notebook_key(nb)
        if key in keyed:
            print(f"error: {keyed[key].name} and {nb.name} both write to <out>/{key}; rename one",
                  file=sys.stderr)
            return 1
        keyed[key] = nb
    if only:
        unknown = sorted(set(only) - set(keyed))
        if unknown:
            print(f"error: --only {','.join(unknown)}: no such notebook in {nb_dir} "
                  f"(available: {', '.join(keyed)})", file=sys.stderr)
            return 1
        keyed = {k: v for k, v in keyed.items() if k in only}
    kernel_problem = check_kernel()
    if kernel_problem:
        print(f"error: {kernel_problem}", file=sys.stderr)
        return 1

    root = str(Path(data_root).resolve()) if data_root else None
    try:
        data = data_digest(root)
        check_out_dir(out, root)
    except (OSError, OutputLocationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, OutputLocationError) else 1
    try:
        with output_lock(out, wait=wait):
            return _run_keyed(keyed, out, root, data, profile, device, seed, force, jobs)
    except LockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LOCKED


def default_jobs(profile: str, n_notebooks: int) -> int:
    """Notebooks run at once when ``--jobs`` is not given: one per CPU core for ``smoke`` and
    ``quick`` (each notebook sets its own torch threads, 1 while training in those profiles, so
    the numbers are those of a one-at-a-time run), one at a time for ``full`` (GPU-sized runs
    that would compete for one device)."""
    if profile == "full":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(n_notebooks, cores or 1))


@contextlib.contextmanager
def _headless() -> Iterator[None]:
    """BRAINLIB_HEADLESS=1 for every kernel started inside (widgets draw static figures); set
    once around a batch so that concurrent runs do not restore it under each other."""
    before = os.environ.get("BRAINLIB_HEADLESS")
    os.environ["BRAINLIB_HEADLESS"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("BRAINLIB_HEADLESS", None)
        else:
            os.environ["BRAINLIB_HEADLESS"] = before


def _result_line(status: dict[str, Any]) -> str:
    if status["status"] == "ok":
        return f"ok  {status['seconds']:.1f} s"
    err = status.get("error", {})
    where = f" (cell {err['cell_index']})" if err.get("cell_index") is not None else ""
    return (f"FAILED  {status['seconds']:.1f} s  {err.get('ename')}: "
            f"{str(err.get('evalue', ''))[:200]}{where}")


class _Planned(NamedTuple):
    """A notebook to run: its console line, key, path, parameters, input digest and the
    seconds of its last run (0 if none; the longest start first when run side by side)."""

    line: str
    key: str
    notebook: Path
    parameters: dict[str, Any]
    digest: str
    last_seconds: float


def _run_keyed(keyed: dict[str, Path], out: Path, root: str | None, data: str, profile: str,
               device: str, seed: int | None, force: bool, jobs: int | None = 1) -> int:
    """The runs themselves, under the output folder's lock (`jobs` notebooks at once)."""
    package = package_digest()
    if out.is_dir():
        sweep_temp(out)  # temp files of a killed run (papermill output, tables, checkpoints)
    failures = 0
    total = len(keyed)
    todo: list[_Planned] = []
    for index, (key, nb) in enumerate(keyed.items(), start=1):
        folder = out / key
        prefix = f"[{index}/{total}] {key:<18}"
        try:
            declared = declared_parameters(nb)
        except NotebookError as exc:
            failures += 1
            folder.mkdir(parents=True, exist_ok=True)
            _write_json(folder / "status.json", {
                "key": key, "notebook": str(nb), "status": "failed", "started": _now(),
                "finished": _now(), "seconds": 0.0, "input_hash": None,
                "error": {"ename": "NotebookError", "evalue": str(exc), "cell_index": None}})
            print(f"{prefix} FAILED  no parameters cell ({nb.name})", flush=True)
            continue
        offered = {"profile": profile, "data_root": root, "out_dir": str(folder), "device": device}
        if seed is not None:
            offered["seed"] = seed
        parameters = {k: v for k, v in offered.items() if k in declared}
        digest = input_hash(nb, parameters, package, data)
        previous = _read_json(folder / "status.json")
        if (not force and previous and previous.get("status") == "ok"
                and previous.get("input_hash") == digest and (folder / nb.name).exists()):
            previous["reused_at"] = _now()
            _write_json(folder / "status.json", previous)
            print(f"{prefix} unchanged, skipped (last run {previous.get('seconds', 0):.1f} s; --force re-runs)",
                  flush=True)
            continue
        resumed = " (last run interrupted: trainings resume)" if previous and previous.get(
            "status") == "running" else ""
        last_seconds = float((previous or {}).get("seconds") or 0.0)
        todo.append(_Planned(f"{prefix} running {nb.name}{resumed}", key, nb, parameters, digest,
                             last_seconds))
    jobs = default_jobs(profile, len(todo)) if jobs is None else max(1, int(jobs))
    machine = host_profile() if todo else None  # measured before any notebook loads the CPU
    if machine is not None:
        print(f"host: {describe(machine)}", flush=True)
    with _headless():
        if jobs == 1 or len(todo) <= 1:
            for job in todo:
                print(f"{job.line} ... ", end="", flush=True)
                status = run_notebook(job.notebook, job.key, job.parameters, out / job.key,
                                      job.digest, machine)
                failures += status["status"] != "ok"
                print(_result_line(status), flush=True)
        else:
            failures += _run_concurrently(todo, out, jobs, machine)
    if failures:
        print(f"{failures} of {total} notebook(s) failed; see {out}/<key>/status.json", flush=True)
    return 1 if failures else 0


def _run_concurrently(todo: list[_Planned], out: Path, jobs: int,
                      machine: dict[str, Any] | None = None) -> int:
    """Run `jobs` notebooks at once (each papermill run drives its own kernel process), the
    longest by its last run first; print a line as each finishes; return the failure count."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    print(f"running {len(todo)} notebooks, {jobs} at a time", flush=True)
    ordered = sorted(todo, key=lambda job: -job.last_seconds)
    failures = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_notebook, job.notebook, job.key, job.parameters, out / job.key,
                               job.digest, machine): job.line for job in ordered}
        for future in as_completed(futures):
            status = future.result()
            failures += status["status"] != "ok"
            print(f"{futures[future]} ... {_result_line(status)}", flush=True)
    return failures
