"""Fixtures shared across test layers: the project root, ../shared data, free ports."""

import os
import socket
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PSYLLM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One torch thread per test worker (and the commands it starts): two workers share two cores, and a
# second thread per process would stall at OpenMP's barrier whenever the other worker is busy.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def shared_file():
    """Path of a file in ../shared/data, or skip the test with the reason."""

    def find(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not path.is_file():
            pytest.skip(f"shared data set not present: {path}")
        return path

    return find


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory):
    """The session's one pipeline run: a fresh clone after `psyllm run --profile smoke`.

    Tests must not modify it; every test that needs trained artefacts reads them here.
    """
    from tests.pipeline.project import BIN, clone_project, run, set_params

    project = clone_project(tmp_path_factory.mktemp("smoke") / "project")
    set_params(project, "smoke")
    completed = run(project, str(BIN / "psyllm"), "run", "--profile", "smoke")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return project


@pytest.fixture(scope="session")
def trained_screener(smoke_project):
    """The screener the smoke run trained."""
    from components.screening import Screener

    return Screener.load(smoke_project / "data/screener")
