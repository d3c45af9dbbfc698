"""The registered model answers safely on its own: MLflow's clients get what the service gives.

Through MLflow's own client (`mlflow.pyfunc.load_model("models:/psyllm@challenger")`) on the smoke
run's registry, and through `mlflow models serve` on loopback.
"""

import httpx
import mlflow
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException

from components.config import load_params
from components.hardware import inference_dtype
from components.language import detect_language
from components.modelling.base_model import load_model
from components.modelling.generate import Question, generate_answers
from components.modelling.prompt import PromptTemplate
from components.modelling.stored_generation import load_generation
from components.screening import Screener, crisis_reply
from tests.conftest import free_port
from tests.pipeline.project import BIN
from tests.serving.servers import running
from tests.serving.test_service import URGENT, WORRY

WORRY_ZH = "我最近晚上总是睡不着，一直担心工作上的事情，怎么办？"
URI = "models:/psyllm@challenger"


@pytest.fixture(scope="module")
def tracking_uri(smoke_project):
    uri = f"sqlite:///{(smoke_project / 'mlruns/mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(scope="module")
def registered(tracking_uri):
    return mlflow.pyfunc.load_model(URI)


def test_ordinary_questions_get_the_templated_prompts_continuation_and_nothing_else(registered, smoke_project):
    answers = registered.predict(pd.Series([WORRY, WORRY_ZH], name="question"))  # a column of questions
    assert list(answers.columns) == ["answer", "level", "categories", "withheld"]
    assert answers["level"].tolist() == ["none", "none"] and not answers["withheld"].any()
    folder = smoke_project / "data/models/finetuned/pretrained"  # the registered challenger's weights
    model, tokenizer = load_model(folder, inference_dtype(torch.device("cpu")))  # the precision both answer in
    questions = [Question(WORRY, "", "en"), Question(WORRY_ZH, "", "zh")]
    scored = generate_answers(model, tokenizer, PromptTemplate.load(folder), questions, load_generation(folder), 2)
    assert answers["answer"].tolist() == scored  # what evaluation measured: the one template, its decoding
    assert answers["answer"][1].strip()
    assert not any(question in answer for question, answer in zip([WORRY, WORRY_ZH], answers["answer"], strict=True))


def test_an_urgent_message_gets_the_crisis_reply_and_no_model_text(registered, smoke_project):
    [answer] = registered.predict(pd.DataFrame({"question": [URGENT], "description": [None]})).to_dict("records")
    screening = Screener.load(smoke_project / "data/screener").screen(URGENT)
    region = load_params(smoke_project / "params.yaml").serve.region
    expected = crisis_reply(screening, region, detect_language(URGENT), case_opened=False)
    assert answer["level"] == "urgent" and answer["categories"] == "suicide"
    assert answer["answer"] == expected.text  # the fixed reply alone; no case is promised, none was opened
    assert answer["withheld"] is False


def test_a_harmful_generation_is_withheld(registered, monkeypatch):
    async def harmful(prompt_ids, max_new_tokens):  # an injected fault: the model writes something harmful
        for piece in ["You are right. ", "You should kill yourself ", "tonight."]:
            yield piece

    monkeypatch.setattr(registered.unwrap_python_model().answerer.generator, "submit", harmful)
    [answer] = registered.predict(pd.DataFrame({"question": [WORRY]})).to_dict("records")
    assert answer["withheld"] is True and answer["level"] == "none"
    assert "kill yourself" not in answer["answer"] and "withheld by our safety check" in answer["answer"]


def test_bad_input_is_refused_naming_the_row(registered):
    with pytest.raises(MlflowException, match=r"row 1: question: .*empty"):
        registered.predict(pd.DataFrame({"question": [WORRY, "   "]}))
    with pytest.raises(MlflowException, match=r"row 2: question: .*too long"):
        registered.predict(pd.DataFrame({"question": [WORRY, WORRY, "x" * 100_000]}))
    with pytest.raises(MlflowException, match=r"row 0: description: too long"):
        registered.predict(pd.DataFrame({"question": [WORRY], "description": ["x" * 100_000]}))


def test_mlflow_models_serve_answers_over_http_as_the_client_does(registered, tracking_uri, tmp_path):
    """`mlflow models serve --env-manager local` (building an environment would need a network)."""
    port, log = free_port(), tmp_path / "serve.log"
    command = [str(BIN / "mlflow"), "models", "serve", "-m", URI, "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with running(tmp_path, command, {"MLFLOW_TRACKING_URI": tracking_uri}, port, log, health="/ping") as server:
        records = [{"question": WORRY}, {"question": URGENT}, {"question": WORRY_ZH, "description": "晚上"}]
        payload = {"dataframe_records": records, "params": {"max_new_tokens": 16}}
        served = httpx.post(f"{server.url}/invocations", json=payload, timeout=120)
        assert served.status_code == 200, served.text
        local = registered.predict(pd.DataFrame(records), params={"max_new_tokens": 16})
        assert served.json()["predictions"] == local.to_dict("records")

        bad = {"dataframe_records": [{"question": WORRY}, {"question": " "}]}
        refused = httpx.post(f"{server.url}/invocations", json=bad, timeout=60)
        assert refused.status_code == 400
        assert "row 1: question: the message is empty" in refused.json()["message"]
        assert "Traceback" not in refused.text and "stack_trace" not in refused.json()
    logged = log.read_text()
    assert URGENT not in logged and WORRY not in logged  # what people wrote stays out of the server's log
