"""The service as users run it: `psyllm serve` on loopback, over the session's trained smoke model."""

from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, free_port
from tests.pipeline.project import BIN
from tests.serving.servers import running, service_environment


class Served:
    """A running service: its URL, its store and its log."""

    def __init__(self, url: str, store_url: str, log: Path) -> None:
        self.url, self.store_url, self.log = url, store_url, log


@pytest.fixture(scope="session")
def served(smoke_project, tmp_path_factory):
    """`psyllm serve --model <smoke model>` from the project root, with its own SQLite store and BentoML home."""
    folder = tmp_path_factory.mktemp("served")
    store_url = f"sqlite:///{folder / 'serving.sqlite'}"
    port = free_port()
    env = dict(service_environment(smoke_project, store_url), BENTOML_HOME=str(folder / "bentoml"))
    command = [str(BIN / "psyllm"), "serve", "--model", env.pop("PSYLLM_MODEL"), "--port", str(port)]
    with running(PROJECT_ROOT, command, env, port, folder / "service.log") as url:
        yield Served(url, store_url, folder / "service.log")
