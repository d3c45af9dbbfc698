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
def smoke_project(tmp_path_factory, worker_id):
    """The session's one pipeline run: a fresh clone after `psyllm run --profile smoke`.

    Built once per session: under pytest-xdist the first worker that needs it builds it while
    holding a file lock, and the others wait and reuse it (a build per worker doubled the suite's
    heaviest work). Tests must not modify it; every test that needs trained artefacts reads them here.
    """
    from filelock import FileLock

    from tests.pipeline.project import BIN, clone_project, run, set_params

    session = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    project, built, failed = session / "smoke" / "project", session / "smoke" / "built", session / "smoke" / "failed"
    with FileLock(str(session / "smoke.lock")):
        if failed.exists():
            pytest.fail(f"the smoke run failed in another worker:\n{failed.read_text()}")
        if not built.exists():
            clone_project(project)
            set_params(project, "smoke")
            # On a 2-core AVX2 CPU the run takes about 10 min, most of it training the screener in fp32.
            completed = run(project, str(BIN / "psyllm"), "run", "--profile", "smoke", timeout=1100)
            if completed.returncode != 0:
                failed.write_text(completed.stdout + completed.stderr)
            assert completed.returncode == 0, completed.stdout + completed.stderr
            built.touch()
    return project


@pytest.fixture(scope="session")
def trained_screener(smoke_project):
    """The screener the smoke run trained."""
    from components.screening import Screener

    return Screener.load(smoke_project / "data/screener")
