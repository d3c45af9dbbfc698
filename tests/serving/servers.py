"""Real servers for the serving tests: the service itself (`bentoml serve`) and PostgreSQL."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port
from tests.pipeline.project import environment, kill_group
from tests.pipeline.servers import wait_until_healthy

API_KEY = "counsellor-test-key"
CONSOLE_KEY = "sXJ0B0q7m8H1b6mSx6z3mUZlQ8gq0a2Wm3kZ1nYQv1k="  # the console's key in these tests only


def service_environment(smoke_project: Path, store_url: str) -> dict[str, str]:
    """The smoke run's fine-tuned model and screener, a store of the test's own, and the case-queue key."""
    return {
        "PSYLLM_MODEL": str(smoke_project / "data/models/finetuned/pretrained"),
        "PSYLLM_SCREENER_DIR": str(smoke_project / "data/screener"),
        "PSYLLM_STORE_URL": store_url,
        "PSYLLM_API_KEY": API_KEY,
        "BENTOML_DO_NOT_TRACK": "true",
    }


class Started:
    """A server command that answers: its process and its base URL."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process, self.url = process, url


@contextmanager
def running(
    cwd: Path, command: list[str], env: dict[str, str], port: int, log: Path, health: str = "/readyz"
) -> Iterator[Started]:
    """Start a server command (output to `log`) in a session of its own, wait until `health` answers,
    yield it; kill it and its workers after, unless it has already exited."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=environment(**env), stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True, text=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(f"{url}{health}", timeout_s=240)
        except TimeoutError:
            raise AssertionError(f"{command} never became ready:\n{log.read_text()[-5000:]}") from None
        yield Started(process, url)
    finally:
        if process.poll() is None:
            kill_group(process)


def _postgres_binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class Postgres:
    """A throwaway PostgreSQL cluster on a loopback port: its SQLAlchemy URL, and stop/start to lose it a while."""

    def __init__(self, binaries: Path, folder: Path, port: int, as_owner: list[str]) -> None:
        self.binaries, self.folder, self.port, self.as_owner = binaries, folder, port, as_owner
        self.url = f"postgresql+psycopg://psyllm@127.0.0.1:{port}/ratings"

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*self.as_owner, str(self.binaries / "pg_ctl"), "-D", str(self.folder / "cluster"), *args]
        return subprocess.run(command, capture_output=True, text=True)

    def start(self) -> None:
        started = self._pg_ctl("-l", str(self.folder / "server.log"), "-w", "start",
                               "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder}")  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr

    def stop(self) -> None:
        """An immediate stop: connections drop as in a crash or a lost network."""
        self._pg_ctl("-m", "immediate", "stop")


@contextmanager
def postgres_server() -> Iterator[Postgres | None]:
    """Debian's PostgreSQL in a throwaway cluster on a loopback port (None if absent).

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
    """
    binaries = _postgres_binaries()
    if binaries is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="psyllm-postgres-"))
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(folder, "postgres")
    server = Postgres(binaries, folder, free_port(), as_owner)
    subprocess.run([*as_owner, str(binaries / "initdb"), "-D", str(folder / "cluster"), "-U", "psyllm",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)  # fmt: skip
    server.start()
    try:
        subprocess.run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "psyllm",
                        "ratings"], check=True, capture_output=True)  # fmt: skip
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
