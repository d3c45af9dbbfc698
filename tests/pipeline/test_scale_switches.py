"""The switches from the embedded defaults to team infrastructure, each against a real server on loopback.

One copy of the trained smoke project reruns the flow once against a real Prefect server with a
DVC remote configured (the `team_rerun` fixture), and the tests read that run from every side: no
expensive step ran and no version was added, the server holds the completed flow run and its
artifacts, the remote carries the data to a fresh clone, and `psyllm schedule` registers on the
same server the deployment prefect.yaml declares. An MLflow server holds the registry in its own test.
"""

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from components import registry
from components.errors import PsyllmError
from flows import feedback, training
from flows.deployment import prefect_yaml, with_schedule
from tests.conftest import PROJECT_ROOT
from tests.pipeline.project import BIN, copy_project, git_commit_all, kill_group, run, sample_site_turn, start
from tests.pipeline.servers import mlflow_server, prefect_server

ARTIFACT_KEYS = {"crawl-report", "evaluation-report", "model-metrics", "promotion-decision", "stage-timings"}
EXPENSIVE = ("pretrain", "finetune", "evaluate", "train_screener", "evaluate_screener")


async def _flow_runs_and_artifacts(api: str) -> tuple[list, list]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        async with get_client() as client:
            return await client.read_flow_runs(), await client.read_artifacts()


async def _deployment(api: str, flow_and_deployment: str):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        async with get_client() as client:
            try:
                return await client.read_deployment_by_name(flow_and_deployment)
            except ObjectNotFound:
                return None


@dataclass(frozen=True)
class TeamRerun:
    project: Path
    api: str
    remote: Path
    versions_before: int
    output: str


def _versions(project: Path) -> int:
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlruns/mlflow.db'}")
    return len(client.search_model_versions(f"name='{registry.MODEL_NAME}'"))


@pytest.fixture(scope="module")
def team_rerun(tmp_path_factory, smoke_project):
    """The trained smoke project rerun once on a Prefect server, with a DVC remote as its default."""
    folder = tmp_path_factory.mktemp("team")
    project = copy_project(smoke_project, folder / "project")
    remote = folder / "team-remote"
    added = run(project, str(BIN / "dvc"), "remote", "add", "--default", "team", str(remote))
    assert added.returncode == 0, added.stderr
    versions_before = _versions(project)
    with prefect_server(folder / "prefect") as api:
        with sample_site_turn(smoke_project):
            completed = run(project, str(BIN / "psyllm"), "run", PREFECT_API_URL=api)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        yield TeamRerun(project, api, remote, versions_before, completed.stdout + completed.stderr)


def test_a_rerun_recrawls_skips_every_expensive_step_and_registers_nothing_new(team_rerun):
    assert re.search(r"crawl ran \((\d+ min )?\d+ s\)", team_rerun.output)  # each stage with its wall time
    for stage in EXPENSIVE:
        assert f"{stage} up to date" in team_rerun.output
    assert "unchanged model, no new version" in team_rerun.output
    assert _versions(team_rerun.project) == team_rerun.versions_before


def test_the_flow_ran_on_the_real_prefect_server_with_its_artifacts(team_rerun):
    assert "Starting temporary server" not in team_rerun.output
    flow_runs, artifacts = asyncio.run(_flow_runs_and_artifacts(team_rerun.api))
    assert [flow_run.state.type.value for flow_run in flow_runs] == ["COMPLETED"]
    assert {artifact.key for artifact in artifacts} >= ARTIFACT_KEYS


def test_psyllm_schedule_serves_the_deployment_that_prefect_yaml_declares(team_rerun, tmp_path):
    # Served from the checkout the flow is imported from, as a user serves from their project root.
    cron = "15 4 * * *"
    server = start(
        PROJECT_ROOT, str(BIN / "psyllm"), "schedule", "--cron", cron,
        PREFECT_API_URL=team_rerun.api, PREFECT_HOME=str(tmp_path / "runner-home"),
    )  # fmt: skip
    try:
        declared = prefect_yaml(with_schedule(cron, None), "psyllm")["deployments"]
        flow_names = {
            "flows/training.py:training": training.FLOW_NAME,
            "flows/feedback.py:feedback_report": feedback.FLOW_NAME,
        }
        assert [deployment["name"] for deployment in declared] == ["scheduled-retraining", "feedback-report"]
        deadline = time.monotonic() + 120
        for expected in declared:
            served = None
            while served is None and time.monotonic() < deadline:
                time.sleep(1)
                name = f"{flow_names[expected['entrypoint']]}/{expected['name']}"
                served = asyncio.run(_deployment(team_rerun.api, name))
            assert served is not None, f"psyllm schedule did not register {expected['name']}"
            assert served.entrypoint == expected["entrypoint"]
            assert served.parameters == expected["parameters"]
            assert served.tags == expected["tags"] and served.description == expected["description"]
            schedules = [(s.schedule.cron, s.schedule.timezone) for s in served.schedules]
            assert schedules == [(expected["schedules"][0]["cron"], "UTC")]
        assert declared[0]["schedules"][0]["cron"] == cron
    finally:
        kill_group(server)


def test_a_dvc_remote_carries_the_data_to_a_fresh_clone_that_reproduces_nothing(team_rerun, tmp_path):
    assert "data pushed to DVC remote 'team'" in team_rerun.output
    git_commit_all(team_rerun.project, "after a run")
    clone = tmp_path / "clone"
    cloned = run(tmp_path, "git", "clone", "-q", str(team_rerun.project), str(clone))
    assert cloned.returncode == 0, cloned.stderr
    pulled = run(clone, str(BIN / "dvc"), "pull")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (clone / "data/models/finetuned/pretrained/model.safetensors").is_file()
    repro = run(clone, str(BIN / "dvc"), "repro", "--single-item", "pretrain", "finetune", "evaluate")
    assert repro.returncode == 0, repro.stdout + repro.stderr
    assert "Running stage" not in repro.stdout
    assert repro.stdout.count("didn't change, skipping") == 3


def test_register_promote_and_rollback_through_a_real_mlflow_server(tmp_path, smoke_project, monkeypatch):
    project = copy_project(smoke_project, tmp_path / "project")
    with mlflow_server(tmp_path / "mlflow") as uri:
        first = run(project, str(BIN / "psyllm"), "register", MLFLOW_TRACKING_URI=uri)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "psyllm version 1 (new version) is the challenger" in first.stdout
        again = run(project, str(BIN / "psyllm"), "register", MLFLOW_TRACKING_URI=uri)
        assert "version 1 (already registered, no new version)" in again.stdout
        assert list((tmp_path / "mlflow/server-artifacts").rglob("model.safetensors"))

        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        with pytest.raises(PsyllmError, match="no earlier champion to roll back to"):
            registry.rollback("nothing to restore", "test")
        with pytest.raises(PsyllmError, match="no version 99"):
            registry.move_alias(registry.CHAMPION, "99", "test", "test")
        registry.move_alias(registry.CHAMPION, "1", "first champion", "test")
        second = registry.create_version(
            registry.get("1").model_uri, "another-digest", "another-screener", {"perplexity": 1.0}, {}, {}, "# v2"
        )
        promoted = run(project, str(BIN / "psyllm"), "promote", second.number, MLFLOW_TRACKING_URI=uri)
        assert promoted.returncode == 0, promoted.stderr
        assert f"version {second.number} is the champion (was version 1)" in promoted.stdout
        rolled_back = run(project, str(BIN / "psyllm"), "rollback", "--reason", "bad answers", MLFLOW_TRACKING_URI=uri)
        assert rolled_back.returncode == 0, rolled_back.stderr
        champion = registry.by_alias(registry.CHAMPION)
        assert champion.number == "1"
        assert champion.tags["psyllm.champion.reason"] == "rollback: bad answers"
        assert champion.tags["psyllm.champion.by"]
    local = mlflow.MlflowClient(f"sqlite:///{project / 'mlruns/mlflow.db'}")
    smoke = mlflow.MlflowClient(f"sqlite:///{smoke_project / 'mlruns/mlflow.db'}")
    name = f"name='{registry.MODEL_NAME}'"
    assert len(local.search_model_versions(name)) == len(smoke.search_model_versions(name))  # all went to the server
