"""The step graph end to end through DVC, in fresh copies of the project."""

import json

from tests.pipeline.project import BIN, change_profile, copy_project, run


def test_smoke_run_produces_every_output(smoke_project):
    report = json.loads((smoke_project / "data/crawl/report.json").read_text())
    assert report["pages_stored"] == 12  # the smoke profile's max_pages
    assert report["robots_skips"] + report["pages_stored"] >= 12
    stats = json.loads((smoke_project / "data/prepared/stats.json").read_text())
    assert stats["corpus"]["documents_out"] > 0
    assert {name: split["pairs"] > 0 for name, split in stats["qa"]["splits"].items()} == {
        "train": True, "validation": True, "test": True,
    }  # fmt: skip
    for name in ("train", "validation", "test"):
        lines = (smoke_project / f"data/prepared/qa/{name}.jsonl").read_text().splitlines()
        assert {"question", "answer", "language"} <= set(json.loads(lines[0]))


def test_status_is_clean_but_the_crawl_and_profile_is_tracked(smoke_project):
    """Only config, the crawl and the benchmark are stale after a run: they reread their inputs on every run."""
    status = run(smoke_project, str(BIN / "dvc"), "status", "--json")
    always = ["always changed"]
    assert json.loads(status.stdout) == {"config": always, "crawl": always, "benchmark": always}
    lock = (smoke_project / "dvc.lock").read_text()
    assert "profile: smoke" in lock


def test_a_stage_is_stale_only_when_a_setting_it_reads_changes(smoke_project, tmp_path):
    """The stage `config` writes the active profile's sections; each stage depends on those it reads."""
    project = copy_project(smoke_project, tmp_path / "project")

    def stale_after(changes: dict[str, object], profile: str) -> set[str]:
        change_profile(project, profile, changes)
        resolved = run(project, str(BIN / "dvc"), "repro", "--single-item", "config")
        assert resolved.returncode == 0, resolved.stdout + resolved.stderr
        status = run(project, str(BIN / "dvc"), "status", "--json")
        return set(json.loads(status.stdout))

    always = {"config", "crawl", "benchmark"}
    # Another profile's model and training: nothing the smoke pipeline reads.
    assert stale_after({"model": {"seed": 7}, "training": {"max_steps": 5}}, "paper") == always
    # The active profile's fine-tune: fine-tune and the evaluation that reads its settings, not pretrain.
    assert stale_after({"finetune": {"patience": 5}}, "smoke") == always | {"finetune", "evaluate"}


def test_prepare_is_stale_when_a_qa_source_outside_the_graph_changes(smoke_project, tmp_path):
    """Exported feedback (or ../shared/data) is no DVC dependency, yet a change to it must rerun prepare."""
    project = copy_project(smoke_project, tmp_path / "project")
    feedback = project / "data/feedback/pairs.jsonl"
    feedback.parent.mkdir(parents=True)
    sample = (project / "data/sample_qa/en.jsonl").read_text(encoding="utf-8").splitlines()
    feedback.write_text(sample[0] + "\n", encoding="utf-8")
    sources = ["data/sample_qa/en.jsonl", "data/sample_qa/zh.jsonl", "data/feedback/pairs.jsonl"]
    change_profile(project, "smoke", {"prepare": {"qa_sources": sources}})
    for command in (("repro", "--single-item", "config"), ("commit", "--force", "prepare")):
        completed = run(project, str(BIN / "dvc"), *command)
        assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "prepare" not in json.loads(run(project, str(BIN / "dvc"), "status", "--json").stdout)
    feedback.write_text(sample[0] + "\n" + sample[1] + "\n", encoding="utf-8")  # a new export, same path
    resolved = run(project, str(BIN / "dvc"), "repro", "--single-item", "config")
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert "prepare" in json.loads(run(project, str(BIN / "dvc"), "status", "--json").stdout)


def test_user_errors_are_one_clear_line_without_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text("profile: smoke\nsmokey: {}\n")
    completed = run(tmp_path, str(BIN / "psyllm"), "prepare")
    assert completed.returncode == 2
    assert "smokey: unknown key" in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout

    (tmp_path / "params.yaml").unlink()
    completed = run(tmp_path, str(BIN / "psyllm"), "crawl")
    assert completed.returncode == 2 and "params.yaml: not found" in completed.stderr

    completed = run(tmp_path, str(BIN / "psyllm"), "run", "--profile", "huge")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr


def test_help_explains_every_verb():
    completed = run(BIN, str(BIN / "psyllm"), "--help")
    assert completed.returncode == 0
    for verb in ("crawl", "prepare", "run"):
        assert verb in completed.stdout
