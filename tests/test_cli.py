"""The `brainlib` command and ./reproduce.sh: help everywhere, failures give a non-zero exit."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from brainlib.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001


def test_every_subcommand_has_help(capsys):
    assert {"synth", "run", "report", "audit", "models"} <= set(SUBCOMMANDS)
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in text
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert f"usage: brainlib {name}" in capsys.readouterr().out


def test_python_dash_m_and_console_script():
    result = subprocess.run([sys.executable, "-m", "brainlib", "run", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--profile" in result.stdout
    script = Path(sys.executable).parent / "brainlib"
    if not script.exists():
        pytest.skip("console script not installed in this environment (pip install -e . creates it)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "synth" in result.stdout


def test_cli_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["run", "--profile", "huge"])
    assert exc.value.code == 2


def _reproduce(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # Use the environment running the tests as is (an "active" environment for reproduce.sh).
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}"}
    env.pop("CONDA_PREFIX", None)
    return subprocess.run(["bash", str(ROOT / "reproduce.sh"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_reproduce_help_and_bad_options():
    result = _reproduce("--help")
    assert result.returncode == 0
    for option in ("--profile", "--only", "--data-root", "--out", "--device", "--force", "--test"):
        assert option in result.stdout
    assert _reproduce("--profile", "huge").returncode == 2
    assert _reproduce("--device", "tpu").returncode == 2
    assert _reproduce("--frobnicate").returncode == 2
    bad_jobs = _reproduce("--jobs", "0")
    assert bad_jobs.returncode == 2 and "--jobs must be a positive integer" in bad_jobs.stderr


@pytest.mark.slow
def test_reproduce_exits_nonzero_on_failure_and_reports_it(tmp_path, fixtures_dir, brainlib_kernel):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(fixtures_dir / "notebooks", notebooks)
    out = tmp_path / "outputs"
    result = _reproduce("--profile", "smoke", "--device", "cpu", "--only", "demo_fails,demo_ok",
                        "--out", str(out), "--notebooks", str(notebooks))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "demo_fails" in result.stdout and "FAILED" in result.stdout
    assert (out / "demo_ok" / "manifest.json").exists()  # the other notebook still ran
    report = (out / "REPORT.md").read_text()
    assert "failed: demo_fails" in report and "planted failure for the runner tests" in report
    assert "demo_noparams" not in report  # --only respected
    assert (out / "REPORT.html").exists()

    ok_only = _reproduce("--profile", "smoke", "--device", "cpu", "--only", "demo_ok",
                         "--out", str(out), "--notebooks", str(notebooks))
    assert ok_only.returncode == 0, ok_only.stdout + ok_only.stderr  # the exit status is this run's
    assert "demo_ok" in ok_only.stdout


def test_readme_quickstart_is_the_two_commands():
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quickstart.strip().splitlines()]
    assert commands == ["./reproduce.sh", "./reproduce.sh --test"]
    assert "./reproduce.sh --test" in (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / "reproduce.sh", os.X_OK) and os.access(ROOT / ".ci" / "run", os.X_OK)


def test_environment_yml_installs_the_pyproject_pins():
    import tomllib

    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-e .[notebooks,dev]"]  # the pins live once, in pyproject.toml
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {"notebooks", "dev"} <= set(project["optional-dependencies"])
    assert all("==" in dep for dep in project["dependencies"])
