"""Real servers on loopback for the scale-switch tests: an MLflow tracking server and a Prefect server."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.pipeline.project import BIN, kill_group, start


def wait_until_healthy(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not become healthy in {timeout_s} s")


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """`mlflow server` with its own SQLite backend store and proxied artefact storage; yields its URI.

    Without job execution: its runner (a dozen huey workers) serves MLflow's GenAI jobs, which
    the registry and tracking never use, and on two cores it more than doubled a model upload.
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start(
        folder,
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "server-artifacts"),
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",  # its job runner starts a dozen workers we never use
    )  # fmt: skip
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_until_healthy(f"{uri}/health")
        yield uri
    finally:
        kill_group(server)


@contextmanager
def prefect_server(folder: Path) -> Iterator[str]:
    """`prefect server start` with its own PREFECT_HOME; yields its API URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start(
        folder,
        str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
        "--no-services", "--no-ui", "--analytics-off",
        PREFECT_HOME=str(folder / "prefect-home"),
    )  # fmt: skip
    try:
        api = f"http://127.0.0.1:{port}/api"
        wait_until_healthy(f"{api}/health")
        yield api
    finally:
        kill_group(server)
