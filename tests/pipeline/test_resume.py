"""A killed run resumes, in a fresh clone of its own: no test here waits for the smoke project.

Kept apart from the smoke project's tests so that a worker waiting for that project can run these.
"""

import json
import sqlite3

from tests.pipeline.project import BIN, clone_project, kill_group, run, set_params, start, wait_for_count


def test_killed_crawl_resumes_through_dvc_repro(tmp_path):
    project = clone_project(tmp_path / "project")
    set_params(project, "smoke", max_pages=30, per_host_delay_s=0.25)
    repro = start(project, str(BIN / "psyllm"), "run", "--profile", "smoke")
    state_file = project / "data/crawl/.state/crawl.sqlite"

    def stored() -> int:
        if not state_file.exists():
            return 0
        with sqlite3.connect(state_file) as state:
            try:
                return state.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
            except sqlite3.OperationalError:  # the crawler has created the file but not yet its tables
                return 0

    stored_before_kill = wait_for_count(stored, at_least=5, timeout_s=120)
    kill_group(repro)
    assert 5 <= stored_before_kill < 30, "the crawl should be killed part-way"
    assert not (project / "data/crawl/pages.jsonl").exists()

    resumed = run(project, str(BIN / "dvc"), "repro", "prepare")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    report = json.loads((project / "data/crawl/report.json").read_text())
    assert report["resumed"] is True
    assert report["pages_stored"] == 30
