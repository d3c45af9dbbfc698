"""MLflow lineage of the smoke run: every screening step has a run, and the screener is a loadable model."""

import mlflow
import pandas as pd
import pytest

from tests.pipeline.servers import mlflow_server


@pytest.fixture(scope="module")
def smoke_runs(smoke_project):
    mlflow.set_tracking_uri(f"sqlite:///{(smoke_project / 'mlruns/mlflow.db').resolve()}")
    return mlflow.search_runs(experiment_names=["psyllm"])


def test_the_local_store_is_an_absolute_sqlite_uri_inside_the_project(smoke_project):
    assert (smoke_project / "mlruns/mlflow.db").is_file()
    assert (smoke_project / "mlruns/artifacts").is_dir()


def test_each_screening_step_logged_params_and_metrics(smoke_runs):
    steps = set(smoke_runs["tags.psyllm.step"])
    assert {"train-screener", "evaluate-screener"} <= steps
    train = smoke_runs[smoke_runs["tags.psyllm.step"] == "train-screener"].iloc[0]
    assert train["params.screening.target_recall"] == "0.97"
    assert train["metrics.en.oof_written_urgent_recall"] >= 0.97
    evaluate = smoke_runs[smoke_runs["tags.psyllm.step"] == "evaluate-screener"].iloc[0]
    assert 0 < evaluate["metrics.test_split.zh.urgent_recall.value"] <= 1


def test_the_logged_screener_loads_as_a_pyfunc_and_screens(smoke_runs):
    run_id = smoke_runs[smoke_runs["tags.psyllm.step"] == "train-screener"].iloc[0]["run_id"]
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/screener")
    verdicts = model.predict(pd.DataFrame({"text": ["I am going to kill myself tonight", "笑死我了"]}))
    assert verdicts["level"].tolist() == ["urgent", "none"]
    assert verdicts["categories"][0] == "suicide"


def test_the_tracking_server_switch_sends_runs_and_artefacts_to_a_real_server(tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI moves every step to a tracking server; nothing lands in ./mlruns."""
    from components import tracking

    with mlflow_server(tmp_path / "server") as uri:
        workdir = tmp_path / "step"
        (workdir / "out").mkdir(parents=True)
        (workdir / "out/result.txt").write_text("hello", encoding="utf-8")
        monkeypatch.chdir(workdir)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        with tracking.step_run("probe", {"section": {"value": 3}}) as run:
            run.log_metrics({"score": {"en": 0.5}})
            run.log_artifacts(workdir / "out", "out")
        client = mlflow.MlflowClient(uri)
        logged = client.get_run(run.run_id)
        assert logged.data.params["section.value"] == "3"
        assert logged.data.metrics["score.en"] == 0.5
        assert [item.path for item in client.list_artifacts(run.run_id, "out")] == ["out/result.txt"]
        assert list((tmp_path / "server/server-artifacts").rglob("result.txt"))
        assert not (workdir / "mlruns").exists()
