"""The training flow end to end: lineage, registration, the gate's verdict, the run lock and a kill."""

import json
import os
import shutil
import subprocess
import time

import mlflow
import pytest
from ruamel.yaml import YAML

from components import registry
from components.lineage import data_hashes, folder_digest
from components.registry import CHALLENGER, CHAMPION, MODEL_NAME
from components.run_lock import run_lock
from tests.conftest import PROJECT_ROOT, SHARED_DATA
from tests.pipeline.project import (
    BIN,
    change_profile,
    clone_project,
    copy_project,
    kill_group,
    run,
    sample_site_turn,
    start,
    wait_for_count,
)


def client_for(project):
    return mlflow.MlflowClient(f"sqlite:///{(project / 'mlruns/mlflow.db').resolve()}")


def test_the_flow_registered_the_evaluated_model_with_its_lineage(smoke_project):
    client = client_for(smoke_project)
    version = client.get_model_version_by_alias(MODEL_NAME, CHALLENGER)
    tags = version.tags
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=smoke_project, capture_output=True, text=True).stdout
    assert tags["psyllm.git_commit"].startswith(head.strip())
    assert tags["psyllm.profile"] == "smoke"
    hashes = data_hashes(smoke_project / "dvc.lock")
    assert tags["psyllm.data.data/prepared/qa"] == hashes["data/prepared/qa"]
    assert tags["psyllm.data.data/models/finetuned"] == hashes["data/models/finetuned"]
    assert len(tags["psyllm.prefect_flow_run"]) == 36  # a Prefect flow-run UUID
    frozen = json.loads((smoke_project / "data/benchmark/frozen.json").read_text())
    assert tags["psyllm.benchmark_version"] == frozen["version"]  # what its benchmark numbers may be compared with
    assert tags["psyllm.benchmark_questions_per_source"] == ("2" if SHARED_DATA.is_dir() else "none")

    variants = json.loads((smoke_project / "data/eval/models/metrics.json").read_text())["variants"]
    assert float(tags["metric.perplexity"]) == pytest.approx(variants["finetuned_pretrained"]["overall"]["perplexity"])
    assert float(tags["base_metric.perplexity"]) == pytest.approx(variants["base"]["overall"]["perplexity"])
    for section in (
        "## Intended use",
        "## Limits",
        "## Data",
        "## Evaluation",
        "## Lineage",
        "| base model |",
        "Real benchmark `",
    ):
        assert section in version.description
    for run_tag in ("psyllm.prefect_flow_run", "psyllm.mlflow_parent_run"):  # the card links both runs
        assert f"- {run_tag}: `{tags[run_tag]}`" in version.description

    mlflow.set_tracking_uri(f"sqlite:///{(smoke_project / 'mlruns/mlflow.db').resolve()}")
    info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/{version.version}")
    assert info.signature.inputs.input_names() == ["question", "description"]
    assert info.signature.outputs.input_names() == ["answer", "level", "categories", "withheld"]
    assert info.saved_input_example_info is not None
    assert set(info.flavors["python_function"]["artifacts"]) == {"model", "screener"}  # one self-contained version
    assert tags["psyllm.screener_digest"] == folder_digest(smoke_project / "data/screener")

    parent = client.get_run(tags["psyllm.mlflow_parent_run"])
    assert parent.info.status == "FINISHED"
    stages = (
        "crawl",
        "benchmark",
        "prepare",
        "pretrain",
        "finetune",
        "evaluate",
        "train_screener",
        "evaluate_screener",
    )
    assert all(parent.data.metrics[f"stage_seconds.{stage}"] >= 0 for stage in stages)  # each stage's wall time
    assert parent.data.tags["psyllm.git_commit"] == tags["psyllm.git_commit"]
    assert parent.data.tags["psyllm.data.data/prepared/qa"] == hashes["data/prepared/qa"]
    nested = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    steps = {run.data.tags["psyllm.step"] for run in nested}
    assert {"pretrain", "finetune", "evaluate", "train-screener", "evaluate-screener", "register"} <= steps


def test_the_gate_verdict_is_recorded_and_matches_the_champion_alias(smoke_project):
    client = client_for(smoke_project)
    version = client.get_model_version_by_alias(MODEL_NAME, CHALLENGER)
    reasons = version.tags["psyllm.gate.reasons"].splitlines()
    promoted = version.tags["psyllm.gate.promote"] == "true"
    assert reasons and all(reason.startswith(("pass: ", "FAIL: ")) for reason in reasons)
    assert promoted == all(reason.startswith("pass: ") for reason in reasons)
    champion = client.get_registered_model(MODEL_NAME).aliases.get(CHAMPION)
    assert (str(champion) == str(version.version)) if promoted else champion is None


def test_a_second_run_refuses_while_one_holds_the_project(tmp_path):
    project = clone_project(tmp_path / "project")
    params_before = (project / "params.yaml").read_text()
    with run_lock(0, path=project / ".state/run.lock"):
        started = time.monotonic()
        completed = run(project, str(BIN / "psyllm"), "run", "--profile", "smoke", "--wait", "2")
        waited = time.monotonic() - started
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "another psyllm run is using this project" in completed.stderr
    assert f"pid {os.getpid()}" in completed.stderr
    assert waited >= 2  # it queued for --wait seconds before refusing
    assert (project / "params.yaml").read_text() == params_before  # the profile switch never happened
    assert not (project / "data/crawl/pages.jsonl").exists() and not (project / "mlruns").exists()


def test_a_flow_killed_mid_finetune_resumes_from_its_checkpoint_and_the_champion_holds(
    tmp_path, smoke_project, monkeypatch
):
    project = copy_project(smoke_project, tmp_path / "project")
    client = client_for(project)
    champion = str(client.get_model_version_by_alias(MODEL_NAME, CHALLENGER).version)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlruns/mlflow.db'}")
    registry.move_alias(CHAMPION, champion, "baseline for the kill test", "test")
    change_profile(
        project,
        "smoke",
        {
            # a new fine-tune, long enough to be killed part-way
            "finetune": {"starts": ["pretrained"], "patience": 100, "training": {"max_steps": 40}},
            "evaluate": {"variants": ["finetuned_pretrained"], "max_questions": 2},
        },
    )
    shutil.rmtree(project / ".state/checkpoints/finetune")  # the smoke run's own, finished checkpoints

    with sample_site_turn(smoke_project):  # this flow crawls on the smoke project's port
        flow = start(project, str(BIN / "psyllm"), "run")
        state_file = project / ".state/checkpoints/finetune/pretrained/latest/state.json"

        def checkpointed_step() -> int:
            return json.loads(state_file.read_text())["step"] if state_file.is_file() else 0

        wait_for_count(checkpointed_step, at_least=8, timeout_s=300)
        kill_group(flow)
        step_at_kill = checkpointed_step()  # the checkpoint the kill left
        assert 8 <= step_at_kill < 40, "finetune should be killed part-way"
        assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == champion

        resumed = run(project, str(BIN / "psyllm"), "run")
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output
    assert "finetune (pretrained): 40 steps on" in output and f"resumed from step {step_at_kill}" in output
    new_champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert str(new_champion.version) == champion or "promoted to champion" in output
    # The gate scored the champion on the challenger's questions in this run, and cached its records.
    reasons = client.get_model_version_by_alias(MODEL_NAME, CHALLENGER).tags["psyllm.gate.reasons"]
    on = "the real benchmark" if SHARED_DATA.is_dir() else "the Q&A test split"
    assert f"perplexity vs champion v{champion} on {on}" in reasons
    assert len(list((project / ".cache/champion_scores").glob("*.jsonl"))) == 1


def test_prefect_yaml_is_generated_from_the_one_deployment_definition():
    from flows.deployment import DEPLOYMENTS, prefect_yaml

    committed = YAML(typ="safe").load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    assert committed == prefect_yaml(DEPLOYMENTS, "psyllm")
