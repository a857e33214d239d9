"""Shared pytest fixtures (fixtures only: nothing global is changed here)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures: tiny files shipped with the tests."""
    return FIXTURES


@pytest.fixture(scope="session")
def brainlib_kernel() -> str:
    """Make the Jupyter kernel `brainlib` available to papermill (registered inside this env).

    `--sys-prefix` keeps the kernel spec inside the environment running the tests, exactly
    as ./reproduce.sh registers it; nothing is written under a home directory.
    """
    pytest.importorskip("papermill")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("brainlib")
        if spec.argv and Path(spec.argv[0]).exists():
            return "brainlib"
    except NoSuchKernel:
        pass
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "brainlib",
                    "--display-name", "Python (brainlib)"], check=True, capture_output=True)
    return "brainlib"
