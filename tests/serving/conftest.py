"""The service as it ships: a Bento built by `psyllm package` from the session's smoke registry, served
with `bentoml serve` on loopback, with no tracking server reachable."""

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine

from tests.conftest import free_port
from tests.pipeline.project import BIN, clone_project, run
from tests.serving.servers import API_KEY, CONSOLE_KEY, postgres_server, running


class Bento:
    """A built Bento: its tag and the BentoML home that holds it."""

    def __init__(self, tag: str, home: Path) -> None:
        self.tag, self.home = tag, home
        self.folder = home / "bentos" / tag.replace(":", "/")


class Served:
    """A running service: its URL, its store and its log."""

    def __init__(self, url: str, store_url: str, log: Path) -> None:
        self.url, self.store_url, self.log = url, store_url, log


@pytest.fixture(scope="session")
def bento(smoke_project, tmp_path_factory):
    """`psyllm package --model models:/psyllm@challenger` in a fresh clone, reading the smoke run's registry
    (and carrying its prepared corpus, for the console's supporting material)."""
    folder = tmp_path_factory.mktemp("bento")
    project = clone_project(folder / "project")
    (project / "data/prepared").mkdir(parents=True, exist_ok=True)
    shutil.copy(smoke_project / "data/prepared/corpus.jsonl", project / "data/prepared/corpus.jsonl")
    packaged = run(
        project,
        str(BIN / "psyllm"), "package", "--model", "models:/psyllm@challenger",
        BENTOML_HOME=str(folder / "bentoml"),
        MLFLOW_TRACKING_URI=f"sqlite:///{smoke_project / 'mlruns/mlflow.db'}",  # read only
        PSYLLM_SCREENER_DIR=str(smoke_project / "data/screener"),
    )  # fmt: skip
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    return Bento(re.search(r"built Bento (psyllm:\w+)", packaged.stdout)[1], folder / "bentoml")


@pytest.fixture(scope="session")
def served(bento, tmp_path_factory):
    """`bentoml serve TAG` from an empty folder: the model and screener come from the Bento alone."""
    folder = tmp_path_factory.mktemp("served")
    store_url = f"sqlite:///{folder / 'serving.sqlite'}"
    port = free_port()
    env = {
        "BENTOML_HOME": str(bento.home),
        "PSYLLM_STORE_URL": store_url,
        "PSYLLM_API_KEY": API_KEY,
        "PSYLLM_CONSOLE_KEY": CONSOLE_KEY,
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",  # nothing listens there: the Bento must not need it
    }
    command = [str(BIN / "bentoml"), "serve", bento.tag, "--port", str(port)]
    with running(folder, command, env, port, folder / "service.log") as server:
        yield Served(server.url, store_url, folder / "service.log")


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL per test module (some stop it on purpose)."""
    with postgres_server() as server:
        if server is None:
            pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
        yield server.url


def emptied(url: str) -> str:
    """The database at `url` with every table dropped, Alembic's record included, so a store opened on it
    starts from the first migration."""
    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    engine.dispose()
    return url


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright (no browser download)."""
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()
