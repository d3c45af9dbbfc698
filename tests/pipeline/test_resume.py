"""A killed run resumes, in a fresh clone of its own: no test here waits for the smoke project.

Kept apart from the smoke project's tests so that a worker waiting for that project can run these.
"""

import json
import sqlite3
import time

from tests.pipeline.project import BIN, clone_project, kill_group, run, set_params, start


def test_killed_crawl_resumes_through_dvc_repro(tmp_path):
    project = clone_project(tmp_path / "project")
    set_params(project, "smoke", max_pages=30, per_host_delay_s=0.25)
    repro = start(project, str(BIN / "psyllm"), "run", "--profile", "smoke")
    state_file = project / "data/crawl/.state/crawl.sqlite"
    deadline = time.monotonic() + 120
    stored_before_kill = 0
    while time.monotonic() < deadline and stored_before_kill < 5:
        time.sleep(0.2)
        if state_file.exists():
            with sqlite3.connect(state_file) as state:
                stored_before_kill = state.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
    kill_group(repro)
    assert 5 <= stored_before_kill < 30, "the crawl should be killed part-way"
    assert not (project / "data/crawl/pages.jsonl").exists()

    resumed = run(project, str(BIN / "dvc"), "repro", "prepare")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    report = json.loads((project / "data/crawl/report.json").read_text())
    assert report["resumed"] is True
    assert report["pages_stored"] == 30
