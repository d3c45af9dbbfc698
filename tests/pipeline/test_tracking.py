"""MLflow lineage of the smoke run: every screening step has a run, and the screener is a loadable model."""

import mlflow
import pandas as pd
import pytest


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
    assert train["metrics.en.oof_urgent_recall"] >= 0.97
    evaluate = smoke_runs[smoke_runs["tags.psyllm.step"] == "evaluate-screener"].iloc[0]
    assert 0 < evaluate["metrics.test_split.zh.urgent_recall.value"] <= 1


def test_the_logged_screener_loads_as_a_pyfunc_and_screens(smoke_runs):
    run_id = smoke_runs[smoke_runs["tags.psyllm.step"] == "train-screener"].iloc[0]["run_id"]
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/screener")
    verdicts = model.predict(pd.DataFrame({"text": ["I am going to kill myself tonight", "笑死我了"]}))
    assert verdicts["level"].tolist() == ["urgent", "none"]
    assert verdicts["categories"][0] == "suicide"
