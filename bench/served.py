"""The real `psyllm serve` on a free loopback port, for the benchmarks that drive or time it.

Each start gets its own folder (store, BentoML home, log), so runs never share state. Readiness is
polled every 0.2 s with `time.sleep`, which locust's gevent patching makes cooperative where a
benchmark imports locust first.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
READY_WITHIN_S = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_environment(folder: Path, screener: Path) -> dict[str, str]:
    """This environment plus the screener, a store and a BentoML home inside `folder`."""
    return {
        **os.environ,
        "PSYLLM_SCREENER_DIR": str(screener.resolve()),
        "BENTOML_DO_NOT_TRACK": "true",
        "PSYLLM_STORE_URL": f"sqlite:///{folder / 'store.sqlite'}",
        "BENTOML_HOME": str(folder / "bentoml"),
    }


def start_serve(model: Path, screener: Path, prefix: str) -> tuple[subprocess.Popen, str]:
    """`psyllm serve` on a free loopback port with its own store and BentoML home; returns it once ready."""
    folder, port = Path(tempfile.mkdtemp(prefix=prefix)), free_port()
    command = [str(Path(sys.executable).parent / "psyllm"), "serve", "--model", str(model.resolve()),
               "--port", str(port)]  # fmt: skip
    with (folder / "serve.log").open("w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=serve_environment(folder, screener), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    host = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{host}/readyz", timeout=2).status_code == 200:
                return server, host
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit(f"psyllm serve was not ready within {READY_WITHIN_S} s; see {folder / 'serve.log'}")
