"""Stage tasks on a throwaway DVC project and a temporary Prefect API: retries, and stages side by side."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prefect import flow
from prefect.testing.utilities import prefect_test_harness
from ruamel.yaml import YAML

from flows.training import StageFailed, run_stage, run_stages, stage_graph
from tests.conftest import PROJECT_ROOT
from tests.pipeline.project import BIN

STEP = """
import pathlib, sys
attempts = pathlib.Path("{name}.attempts")
count = int(attempts.read_text()) + 1 if attempts.exists() else 1
attempts.write_text(str(count))
if count <= {failures}:
    print("error: {message}", file=sys.stderr)
    sys.exit({code})
pathlib.Path("{name}.out").write_text("done")
"""

# Each of the two waits until the other has started: run one at a time, the first gives up.
RENDEZVOUS = """
import os, pathlib, sys, time
pathlib.Path("{name}.started").write_text(os.environ.get("OMP_NUM_THREADS", "unset"))
deadline = time.monotonic() + 60
while not pathlib.Path("{other}.started").exists():
    if time.monotonic() > deadline:
        print("error: {other} never started beside {name}", file=sys.stderr)
        sys.exit(2)
    time.sleep(0.05)
pathlib.Path("{name}.out").write_text("done")
"""


def dvc_project(folder: Path, scripts: dict[str, str], stages: str) -> None:
    for name, script in scripts.items():
        (folder / f"{name}.py").write_text(script)
    (folder / "dvc.yaml").write_text(textwrap.dedent(stages))
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=folder, check=True)


@pytest.fixture
def prefect_api(monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=180):
        yield


def test_a_transient_failure_is_retried_and_a_user_error_is_not(tmp_path, monkeypatch, prefect_api):
    scripts = {
        name: STEP.format(name=name, failures=failures, code=code, message=message)
        for name, failures, code, message in (
            ("flaky", 1, 75, "the tracking server at 127.0.0.1:5000 is unreachable"),
            ("broken", 9, 2, "params.yaml: profiles.smoke.crawl.max_pagez: unknown key"),
        )
    }
    dvc_project(
        tmp_path,
        scripts,
        f"""\
        stages:
          flaky:
            cmd: {sys.executable} flaky.py
            outs: [flaky.out]
          broken:
            cmd: {sys.executable} broken.py
            outs: [broken.out]
        """,
    )
    monkeypatch.chdir(tmp_path)

    @flow
    def two_stages() -> tuple[str, StageFailed | None]:
        without_delay = run_stage.with_options(retry_delay_seconds=0)
        outcome = without_delay("flaky")
        try:
            without_delay("broken")
        except StageFailed as failed:
            return outcome, failed
        return outcome, None

    outcome, failure = two_stages()
    assert outcome == "ran"
    assert (tmp_path / "flaky.attempts").read_text() == "2"  # failed once (exit 75), retried, passed
    assert (tmp_path / "broken.attempts").read_text() == "1"  # a user error is not retried
    assert failure is not None and not failure.transient
    assert str(failure) == "step 'broken' failed: params.yaml: profiles.smoke.crawl.max_pagez: unknown key"


def test_independent_stages_run_side_by_side_and_a_failure_stops_what_depends_on_it(tmp_path, monkeypatch, prefect_api):
    scripts = {
        "left": RENDEZVOUS.format(name="left", other="right"),
        "right": RENDEZVOUS.format(name="right", other="left"),
        "joined": STEP.format(name="joined", failures=0, code=0, message=""),
        "broken": STEP.format(name="broken", failures=9, code=2, message="a user error"),
        "after": STEP.format(name="after", failures=0, code=0, message=""),
    }
    dvc_project(
        tmp_path,
        scripts,
        f"""\
        stages:
          joined:
            cmd: {sys.executable} joined.py
            deps: [left.out, right.out]
            outs: [joined.out]
          left:
            cmd: {sys.executable} left.py
            outs: [left.out]
          right:
            cmd: {sys.executable} right.py
            outs: [right.out]
          broken:
            cmd: {sys.executable} broken.py
            outs: [broken.out]
          after:
            cmd: {sys.executable} after.py
            deps: [broken.out]
            outs: [after.out]
        """,
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the flow then shares the cores out itself
    graph = stage_graph()
    assert sorted(graph["joined"]) == ["left", "right"] and graph["after"] == ["broken"]
    assert list(graph).index("joined") > max(list(graph).index("left"), list(graph).index("right"))

    @flow
    def side_by_side() -> tuple[dict[str, str], StageFailed | None]:
        outcomes, _ = run_stages({stage: graph[stage] for stage in ("left", "right", "joined")}, workers=2)
        try:
            run_stages({stage: graph[stage] for stage in ("broken", "after")}, workers=2)
        except StageFailed as failed:
            return outcomes, failed
        return outcomes, None

    outcomes, failure = side_by_side()
    assert outcomes == {"left": "ran", "right": "ran", "joined": "ran"}
    threads = str(max(1, (os.cpu_count() or 1) // 2))  # two stages side by side, half the cores each
    assert (tmp_path / "left.started").read_text() == (tmp_path / "right.started").read_text() == threads
    # Both stages recorded their results in dvc.lock, though they finished side by side.
    locked = YAML(typ="safe").load((tmp_path / "dvc.lock").read_text())["stages"]
    assert {"left", "right", "joined"} <= set(locked)
    assert failure is not None and str(failure) == "step 'broken' failed: a user error"
    assert not (tmp_path / "after.attempts").exists()  # nothing that depends on a failed stage starts


def test_every_stage_output_is_tracked_by_git_or_ignored():
    """A run leaves no new file for `git status` to show: DVC's cached outputs (the per-question
    records among them, whose generated answers can repeat a real question's text) are ignored, and
    each output left to git is committed or ignored on purpose."""
    from dvc.repo import Repo

    def git(*arguments: str) -> bool:
        return subprocess.run(["git", *arguments], cwd=PROJECT_ROOT, capture_output=True).returncode == 0

    with Repo(str(PROJECT_ROOT)) as repo:
        outputs = [(out.def_path, out.use_cache) for out in repo.index.outs]
    assert outputs
    ignored = {path for path, _ in outputs if git("check-ignore", "-q", path)}
    assert [path for path, cached in outputs if cached and path not in ignored] == []
    undecided = [path for path, _ in outputs if path not in ignored and not git("ls-files", "--error-unmatch", path)]
    assert undecided == []
