"""Stage tasks retry transient failures only, on a throwaway DVC project and a temporary Prefect API."""

import subprocess
import sys
import textwrap

from prefect import flow
from prefect.testing.utilities import prefect_test_harness

from flows.training import StageFailed, run_stage
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


def test_a_transient_failure_is_retried_and_a_user_error_is_not(tmp_path, monkeypatch):
    for name, failures, code, message in (
        ("flaky", 1, 75, "the tracking server at 127.0.0.1:5000 is unreachable"),
        ("broken", 9, 2, "params.yaml: profiles.smoke.crawl.max_pagez: unknown key"),
    ):
        (tmp_path / f"{name}.py").write_text(STEP.format(name=name, failures=failures, code=code, message=message))
    (tmp_path / "dvc.yaml").write_text(
        textwrap.dedent(f"""\
        stages:
          flaky:
            cmd: {sys.executable} flaky.py
            outs: [flaky.out]
          broken:
            cmd: {sys.executable} broken.py
            outs: [broken.out]
        """)
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    @flow
    def two_stages() -> tuple[str, StageFailed | None]:
        without_delay = run_stage.with_options(retry_delay_seconds=0)
        outcome = without_delay("flaky")
        try:
            without_delay("broken")
        except StageFailed as failed:
            return outcome, failed
        return outcome, None

    with prefect_test_harness(server_startup_timeout=180):
        outcome, failure = two_stages()
    assert outcome == "ran"
    assert (tmp_path / "flaky.attempts").read_text() == "2"  # failed once (exit 75), retried, passed
    assert (tmp_path / "broken.attempts").read_text() == "1"  # a user error is not retried
    assert failure is not None and not failure.transient
    assert str(failure) == "step 'broken' failed: params.yaml: profiles.smoke.crawl.max_pagez: unknown key"
