"""Temporary copies of the project, as a fresh clone would be, for end-to-end runs."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
from ruamel.yaml import YAML

from tests.conftest import PROJECT_ROOT, SHARED_DATA, free_port

BIN = Path(sys.executable).parent


def _link_shared_data(destination: Path) -> None:
    """The shared public data beside a project copy, where params.yaml looks for it (as in CI)."""
    shared = destination.parent / "shared"
    if SHARED_DATA.is_dir() and not shared.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shared.symlink_to(SHARED_DATA.parent, target_is_directory=True)


def clone_project(destination: Path) -> Path:
    """Copy tracked and untracked-but-not-ignored files, then commit them in a new repository.

    The shared public data is linked beside the copy, where params.yaml looks for it, as CI's
    clone has it beside the checkout.
    """
    _link_shared_data(destination)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for relative in filter(None, listed):
        source = PROJECT_ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fresh clone"], cwd=destination, check=True)
    return destination


def change_profile(project: Path, profile: str, changes: dict[str, object]) -> None:
    """Merge `changes` (nested sections) into the overrides of `profile` in a copy's params.yaml."""
    yaml = YAML()
    params_file = project / "params.yaml"
    document = yaml.load(params_file.read_text())

    def merge(section: dict, update: dict[str, object]) -> None:
        for key, value in update.items():
            if isinstance(value, dict):
                if not isinstance(section.get(key), dict):
                    section[key] = {}
                merge(section[key], value)
            else:
                section[key] = value

    if document["profiles"].get(profile) is None:
        document["profiles"][profile] = {}
    merge(document["profiles"][profile], changes)
    with params_file.open("w") as handle:
        yaml.dump(document, handle)


def set_params(project: Path, profile: str, **crawl_fields: object) -> None:
    """Pick a free loopback port for the sample site (and any other crawl fields) in a copy."""
    change_profile(project, profile, {"crawl": {"sample_site_port": free_port(), **crawl_fields}})


def environment(**extra: str) -> dict[str, str]:
    """This process's environment for a project command, minus the tracking URI.

    `mlflow.set_tracking_uri` in a test exports MLFLOW_TRACKING_URI; inherited, it would point a
    copy's steps at another project's store. A test that wants a server passes it in `extra`.
    """
    inherited = {name: value for name, value in os.environ.items() if name != "MLFLOW_TRACKING_URI"}
    return dict(inherited, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1", **extra)


def run(project: Path, *command: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command in `project`, with extra environment variables from `env`."""
    return subprocess.run(
        list(command), cwd=project, env=environment(**env), capture_output=True, text=True, timeout=timeout
    )


def start(project: Path, *command: str, **env: str) -> subprocess.Popen[str]:
    """Start a command in its own process group, so a test can kill it and all its children."""
    return subprocess.Popen(
        list(command), cwd=project, env=environment(**env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def kill_group(process: subprocess.Popen[str], timeout: float = 60) -> None:
    """SIGKILL a started command and all its descendants, and wait until every one has gone.

    The children are orphaned, and until init reaps them they still count as alive: DVC's lock
    would then refuse the next `dvc repro` with "is busy, it is being blocked by" their pids.
    """
    members = [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]
    os.killpg(process.pid, signal.SIGKILL)
    for pid in members[1:]:  # children that started sessions of their own (BentoML's workers do)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while any(psutil.pid_exists(pid) for pid in members):
        assert time.monotonic() < deadline, f"killed processes not reaped after {timeout} s: {members}"
        time.sleep(0.1)


def copy_project(source: Path, destination: Path) -> Path:
    """A full copy of a trained project (DVC cache, MLflow store, checkpoints) to run again in.

    Prefect's temporary-server database is left behind: each copy starts its own. The shared
    public data is linked beside it, as beside the project it copies.
    """
    _link_shared_data(destination)
    shutil.copytree(source, destination, symlinks=True, ignore=shutil.ignore_patterns(".prefect"))
    return destination


def wait_for_count(count: Callable[[], int], at_least: int, timeout_s: float) -> int:
    """Read `count` every 0.2 s until it reaches `at_least` or `timeout_s` passes; returns the last reading.

    For killing a running step part-way: its progress is read from what it writes as it goes.
    """
    deadline = time.monotonic() + timeout_s
    reading = 0
    while time.monotonic() < deadline and reading < at_least:
        time.sleep(0.2)
        reading = count()
    return reading


@contextlib.contextmanager
def sample_site_turn(smoke_project: Path) -> Iterator[None]:
    """Hold the smoke project's sample-site port while a flow in a copy of it may crawl.

    Every copy keeps the port the smoke build chose (changing it would change the crawled pages'
    URLs and rerun every stage), so flows in two copies take turns instead of colliding on it.
    """
    from filelock import FileLock

    with FileLock(str(smoke_project.parent / "sample-site.lock")):
        yield


def git_commit_all(project: Path, message: str) -> None:
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=project, check=True)
