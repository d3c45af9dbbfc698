"""Fixtures shared across test layers: the project root, ../shared data, free ports."""

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PSYLLM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One torch thread per test worker (and the commands it starts): three workers share two cores, and a
# second thread per process would stall at OpenMP's barrier whenever another worker is busy.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def free_port() -> int:
    """A loopback port free now, below the kernel's ephemeral range (32768 and up on Linux).

    A test often picks a port long before its server binds it (a flow runs other stages before the
    crawl serves the sample site). An ephemeral port can meanwhile become the source port of any
    client connection on the machine, and the server then fails with "Address already in use".
    """
    chooser = random.Random()
    for _ in range(200):
        port = chooser.randint(20_000, 32_000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port between 20000 and 32000")


@pytest.fixture
def shared_file():
    """Path of a file in ../shared/data, or skip the test with the reason."""

    def find(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not path.is_file():
            pytest.skip(f"shared data set not present: {path}")
        return path

    return find


SMOKE_WAIT_S = 1800


def _needs_smoke(item: pytest.Item) -> bool:
    return "smoke_project" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules that need the smoke project run last, so the others run while it builds.

    Every worker collects and sorts alike (the sort is stable), so pytest-xdist hands out whole
    modules in this order.
    """
    waiting = {item.nodeid.split("::")[0] for item in items if _needs_smoke(item)}
    items.sort(key=lambda item: item.nodeid.split("::")[0] in waiting)


def _smoke_folder(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One folder for the whole session, shared by pytest-xdist's workers."""
    base = tmp_path_factory.getbasetemp()
    return (base if worker_id == "master" else base.parent) / "smoke"


@pytest.fixture(scope="session", autouse=True)
def smoke_build(request, tmp_path_factory, worker_id):
    """Start the session's one pipeline run in the background, if any chosen test needs it.

    The first worker to get here starts `tests.smoke_build`; every worker then lowers its own
    priority, so the run (the session's longest chain) keeps the cores it asks for while the other
    tests share what is left. The run trains the screener beside the model (two stages at a time,
    `--stage-workers 2`), each with half the cores: the other tests are done within its first
    minutes. The worker that started it waits for it before the session ends.
    """
    if not any(_needs_smoke(item) for item in request.session.items):
        yield
        return
    from filelock import FileLock

    from tests.pipeline.project import environment

    folder = _smoke_folder(tmp_path_factory, worker_id)
    folder.mkdir(parents=True, exist_ok=True)
    process = None
    with FileLock(str(folder / "start.lock")):
        if not (folder / "started").exists():
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.smoke_build", str(folder)],
                cwd=PROJECT_ROOT, env=environment(OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // 2))),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            (folder / "started").touch()
    os.nice(10)
    yield
    if process is not None:
        process.wait()


@pytest.fixture(scope="session")
def smoke_project(smoke_build, tmp_path_factory, worker_id):
    """The session's one pipeline run: a fresh clone after `psyllm run --profile smoke`.

    Built once per session, in the background (`smoke_build`); tests must not modify it. Every
    test that needs trained artefacts reads them here.
    """
    folder = _smoke_folder(tmp_path_factory, worker_id)
    deadline = time.monotonic() + SMOKE_WAIT_S
    while not (folder / "built").exists():
        if (folder / "failed").exists():
            pytest.fail(f"the smoke run failed:\n{(folder / 'failed').read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the smoke run did not finish in {SMOKE_WAIT_S} s")
        time.sleep(1)
    return folder / "project"


@pytest.fixture(scope="session")
def trained_screener(smoke_project):
    """The screener the smoke run trained."""
    from components.screening import Screener

    return Screener.load(smoke_project / "data/screener")
