"""Concurrent runs, tested with real processes: one run per output folder (<out>/.lock), the
output folder kept apart from the data root, and phantom sets / slice caches generated once
when several runs share a cache (issue 14)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from brainlib._atomic import LockedError, file_lock, read_lock_holder
from brainlib.run_guard import EXIT_LOCKED, OutputLocationError, check_out_dir

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def _start_together(code: str, go: Path, n: int, env: dict[str, str] | None = None,
                    head_start: float = 0.5, timeout: float = 120) -> list[dict]:
    """Start `n` processes running `code` (each waits for `go` to exist), release them at once,
    and return the JSON each printed; every process must exit 0."""
    procs = [_python(code, env) for _ in range(n)]
    time.sleep(head_start)
    go.touch()
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout))
    return results


def _holder(lock: Path, ready: Path) -> subprocess.Popen:
    """A process that takes `lock`, touches `ready`, and sleeps until killed."""
    proc = _python(f"""
        import time
        from brainlib._atomic import file_lock
        with file_lock({str(lock)!r}, purpose="test holder"):
            open({str(ready)!r}, "w").close()
            time.sleep(120)
        """)
    _wait_for(ready)
    return proc


def test_lock_refused_with_holder_named_and_freed_when_holder_is_killed(tmp_path):
    lock = tmp_path / "out" / ".lock"
    proc = _holder(lock, tmp_path / "ready")
    try:
        with pytest.raises(LockedError) as err:
            with file_lock(lock, wait=False, refused="choose another --out"):
                pass
        assert f"pid {proc.pid}" in str(err.value) and "test holder" in str(err.value)
        assert "choose another --out" in str(err.value)
        assert read_lock_holder(lock)["pid"] == proc.pid
        with pytest.raises(LockedError):
            with file_lock(lock, wait=0.3):  # a bounded wait gives up too
                pass
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean-up: the kernel releases a flock
        proc.wait()
    with file_lock(lock, wait=False):
        with file_lock(lock, wait=False):  # re-entrant within one process
            assert read_lock_holder(lock)["pid"] == os.getpid()


def test_run_into_a_locked_output_folder_exits_75_and_writes_nothing(tmp_path, fixtures_dir, brainlib_kernel,
                                                                     capsys):
    from brainlib.runner import run_notebooks

    out = tmp_path / "out"
    proc = _holder(out / ".lock", tmp_path / "ready")
    try:
        code = run_notebooks(profile="smoke", only=["demo_ok"], out_dir=out, device="cpu",
                             notebooks_dir=fixtures_dir / "notebooks")
    finally:
        proc.kill()
        proc.wait()
    assert code == EXIT_LOCKED
    err = capsys.readouterr().err
    assert "another run is writing into" in err and f"pid {proc.pid}" in err
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of the refused run


def test_output_folder_may_not_overlap_the_data_root(tmp_path, fixtures_dir, brainlib_kernel, capsys):
    from brainlib.runner import run_notebooks

    data = tmp_path / "DATA"
    (data / "rsna").mkdir(parents=True)
    for out in (data, data / "outputs", tmp_path):
        with pytest.raises(OutputLocationError, match="must not overlap the dataset"):
            check_out_dir(out, data)
    link = tmp_path / "link-to-data"
    link.symlink_to(data, target_is_directory=True)
    with pytest.raises(OutputLocationError, match="is the data root"):
        check_out_dir(link, data)  # resolved before comparing
    check_out_dir(tmp_path / "outputs", link)  # a symlinked data root chosen by the user is fine
    check_out_dir(data / "outputs", None)  # phantoms: nothing to overlap

    code = run_notebooks(profile="smoke", only=["demo_ok"], data_root=data, out_dir=data / "outputs",
                         device="cpu", notebooks_dir=fixtures_dir / "notebooks")
    assert code == 2 and "inside the data root" in capsys.readouterr().err
    assert not (data / "outputs").exists()


@pytest.mark.slow
def test_two_reproduce_into_one_folder_second_exits_first_completes(tmp_path, fixtures_dir, brainlib_kernel):
    out = tmp_path / "out"
    args = ["./reproduce.sh", "--profile", "smoke", "--device", "cpu", "--only", "demo_ok",
            "--out", str(out), "--notebooks", str(fixtures_dir / "notebooks")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() + 120
    while "reproduce.sh" not in str((read_lock_holder(out / ".lock") or {}).get("purpose")):
        assert time.monotonic() < end and first.poll() is None, "first run never took the lock"
        time.sleep(0.1)
    second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == EXIT_LOCKED, second.stdout + second.stderr
    assert "another run is writing into" in second.stderr and str(first.pid) in second.stderr
    assert "running demo_ok" not in second.stdout
    log, _ = first.communicate(timeout=600)
    assert first.returncode == 0, log
    assert log.count("running demo_ok") == 1
    assert json.loads((out / "demo_ok" / "status.json").read_text())["status"] == "ok"
    assert (out / "REPORT.html").exists()


_GENERATOR = """
    import json, sys, time
    from pathlib import Path
    from brainlib._atomic import atomic_dir
    from brainlib.data.synth import locked_generation
    from brainlib.paths import cache_dir

    @locked_generation
    def ensure_demo(n, seed=0):
        final = cache_dir("phantoms") / f"demo-n{n}-s{seed}"
        if (final / "COMPLETE").exists():
            return final, False
        time.sleep(1.0)  # generation takes a while: the other process arrives meanwhile
        with atomic_dir(final) as tmp:
            (tmp / "COMPLETE").write_text("x")
        return final, True

    while not Path(sys.argv[1] if len(sys.argv) > 1 else GO).exists():
        time.sleep(0.01)
    final, generated = ensure_demo(3)
    print(json.dumps({"path": str(final), "generated": generated}))
"""


def test_phantom_set_generated_once_by_processes_sharing_a_cache(tmp_path):
    go = tmp_path / "go"
    code = _GENERATOR.replace("GO", repr(str(go)))
    results = _start_together(code, go, 3, {"BRAINLIB_CACHE": str(tmp_path / "cache")})
    assert len({r["path"] for r in results}) == 1
    assert sum(r["generated"] for r in results) == 1  # the others waited and reused it
    assert (Path(results[0]["path"]) / "COMPLETE").exists()


def test_every_phantom_cache_function_is_locked():
    from brainlib.data import synth
    from brainlib.data.synth import body_ct, bone_scan, breast_us, phantom_cache

    for fn in (phantom_cache.ensure_phantoms, bone_scan.ensure_bonescan, breast_us.ensure_busi,
               body_ct.ensure_deeplesion):
        assert getattr(fn, "__wrapped__", None) is not None, f"{fn.__name__} is not locked_generation"
    assert synth.ensure_phantoms is phantom_cache.ensure_phantoms


_SLICES = """
    import json, sys, time
    from pathlib import Path
    from brainlib.data import cache
    from brainlib.io import BRAIN
    built = []
    original = cache._build
    def counting(*args, **kwargs):
        built.append(1)
        time.sleep(1.0)
        return original(*args, **kwargs)
    cache._build = counting
    while not Path(GO).exists():
        time.sleep(0.01)
    paths = sorted(str(p) for p in Path(SRC).glob("*.dcm"))
    c = cache.build_cache(paths, [BRAIN], 16, cache_dir=CACHE, progress=False)
    print(json.dumps({"built": len(built), "rows": len(c), "file": str(c.file)}))
"""


def test_slice_cache_built_once_by_processes_sharing_it(tmp_path):
    import numpy as np

    from brainlib.io.testing import write_ct_slice

    for i in range(4):
        write_ct_slice(tmp_path / "src" / f"{i}.dcm", np.full((32, 32), 40.0 * i), instance_number=i + 1)
    go = tmp_path / "go"
    code = (_SLICES.replace("GO", repr(str(go))).replace("SRC", repr(str(tmp_path / "src")))
            .replace("CACHE", repr(str(tmp_path / "cache"))))
    results = _start_together(code, go, 2)
    assert sum(r["built"] for r in results) == 1
    assert {r["rows"] for r in results} == {4} and len({r["file"] for r in results}) == 1


def test_a_run_opened_by_hand_refuses_an_output_folder_inside_the_data_root(tmp_path):
    from brainlib.report.manifest import DataSource, start_run

    data = tmp_path / "DATA"
    (data / "rsna").mkdir(parents=True)
    keep = data / "rsna" / "tables" / "stage_2_train.csv"
    keep.parent.mkdir()
    keep.write_text("ID,Label\n")
    with pytest.raises(OutputLocationError, match="inside the data root"):
        start_run("he2024", {}, data / "rsna", DataSource("real", "rsna", root=str(data)))
    assert keep.exists()  # nothing cleared
    start_run("he2024", {}, tmp_path / "out" / "he2024", DataSource("real", "rsna", root=str(data)))


_REAL_PHANTOMS = """
    import json, time
    from pathlib import Path
    import brainlib.data.synth.writers as w
    from brainlib.data.synth.phantom_cache import ensure_phantoms
    calls = []
    original = w.write_rsna
    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    w.write_rsna = counting
    while not Path(GO).exists():
        time.sleep(0.01)
    root = ensure_phantoms("rsna", n_studies=2, seed=5, size=32)
    print(json.dumps({"root": str(root), "generated": len(calls),
                      "files": len(list((root / "stage_2_train").glob("*.dcm")))}))
"""


@pytest.mark.slow
def test_real_rsna_phantoms_generated_once_by_two_runs_sharing_the_cache(tmp_path):
    go = tmp_path / "go"
    results = _start_together(_REAL_PHANTOMS.replace("GO", repr(str(go))), go, 2,
                              {"BRAINLIB_CACHE": str(tmp_path / "cache")}, head_start=1.0, timeout=600)
    assert sum(r["generated"] for r in results) == 1
    assert len({r["root"] for r in results}) == 1 and results[0]["files"] == results[1]["files"] > 0
    assert not [p for p in (tmp_path / "cache" / "phantoms").iterdir() if p.name.startswith(".")]
