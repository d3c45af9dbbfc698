"""The served Bento over HTTP: BentoML's client, raw HTTP, its store and its log."""

import json
import re

import bentoml
import httpx
import mlflow
import pandas as pd
import pytest

from components.serving.store import Store
from tests.serving.servers import API_KEY

WORRY = "How can I stop worrying so much at night?"
URGENT = "I have the pills ready and I want to kill myself tonight"


@pytest.fixture(scope="module")
def client(served):
    with bentoml.SyncHTTPClient(served.url, timeout=120) as client:
        yield client


def stream(served, payload):
    with httpx.stream("POST", f"{served.url}/answer_stream", json=payload, timeout=120) as response:
        return response, [json.loads(line) for line in response.iter_lines() if line]


def test_an_answer_through_bentomls_client_is_screened_and_issued(client, served):
    reply = client.answer(question=WORRY, max_new_tokens=16)
    assert set(reply) >= {"answer", "screening", "model_version", "request_id"}
    assert reply["screening"]["level"] == "none" and reply["screening"]["urgent"] is False
    assert reply["model_version"] == "psyllm/1"  # the registered version the Bento carries
    assert re.fullmatch(r"[0-9a-f]{32}", reply["request_id"]) and reply["withheld"] is False
    assert client.screen(text=URGENT)["level"] == "urgent"


def test_the_stream_screens_first_and_carries_the_same_answer(client, served):
    response, events = stream(served, {"question": WORRY, "max_new_tokens": 16})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    assert events[0]["type"] == "screening" and events[-1]["type"] == "done"
    streamed = "".join(event["text"] for event in events if event["type"] == "text")
    assert streamed.strip() == client.answer(question=WORRY, max_new_tokens=16)["answer"]  # greedy: same text


def test_an_urgent_message_gets_help_and_no_generated_advice_and_reaches_the_case_queue(client, served):
    _, events = stream(served, {"question": URGENT, "max_new_tokens": 8})
    assert [event["type"] for event in events] == ["screening", "crisis", "done"]  # no model text at all
    assert events[0]["screening"]["urgent"] and "suicide" in events[0]["screening"]["categories"]
    assert "Please reach a person now" in events[1]["text"] and events[1]["services"]
    assert "A counsellor has been told" in events[1]["text"] and events[2]["generated"] is False
    reply = client.answer(question=URGENT, max_new_tokens=8)
    assert reply["answer"] == events[1]["text"]  # the crisis reply is the whole answer

    assert httpx.get(f"{served.url}/cases").status_code == 401
    assert httpx.get(f"{served.url}/cases", headers={"X-API-Key": "wrong"}).status_code == 401
    cases = httpx.get(f"{served.url}/cases", params={"status": "open"}, headers={"X-API-Key": API_KEY}).json()["cases"]
    queued = {case["request_id"]: case for case in cases}
    assert {events[0]["request_id"], reply["request_id"]} <= set(queued)
    case = queued[reply["request_id"]]
    assert case["categories"] == "suicide" and case["question"] is None  # raw text is not stored by default
    resolved = httpx.post(f"{served.url}/cases/{case['id']}/resolve", headers={"X-API-Key": API_KEY})
    assert resolved.json()["status"] == "resolved"


def test_the_registered_model_answers_as_the_service_does(client, smoke_project):
    """One definition of answering: MLflow's client on the registry and the Bento built from it agree."""
    mlflow.set_tracking_uri(f"sqlite:///{(smoke_project / 'mlruns/mlflow.db').resolve()}")
    registered = mlflow.pyfunc.load_model("models:/psyllm@challenger")
    questions = [WORRY, "我最近总是失眠，怎么办？", "Sometimes I wish I could just go to sleep and not wake up"]
    local = registered.predict(pd.DataFrame({"question": questions}), params={"max_new_tokens": 24})
    for question, row in zip(questions, local.to_dict("records"), strict=True):
        served = client.answer(question=question, max_new_tokens=24)
        assert (row["level"], row["categories"].split(",") if row["categories"] else []) == (
            served["screening"]["level"],
            served["screening"]["categories"],
        )
        assert row["answer"] == served["answer"] and row["withheld"] == served["withheld"]
    assert local["level"].tolist() == ["none", "none", "elevated"]  # the gentle reply, then the model's text


def test_ratings_are_stored_once_per_rater_for_issued_answers_only(client, served):
    request_id = client.answer(question=WORRY, max_new_tokens=4)["request_id"]
    scores = {"helpfulness": 4, "fluency": 3, "relevance": 5, "logic": 2}
    assert client.feedback(request_id=request_id, rater_id="rater-a", **scores)["request_id"] == request_id
    again = httpx.post(f"{served.url}/feedback", json={"request_id": request_id, "rater_id": "rater-a", **scores})
    assert again.status_code == 409 and "already rated" in again.json()["error"]
    unknown = httpx.post(f"{served.url}/feedback", json={"request_id": "0" * 32, **scores})
    assert unknown.status_code == 404
    for bad in ({"helpfulness": 6}, {"logic": 0}, {"fluency": "3"}, {"relevance": 2.5}):
        assert httpx.post(f"{served.url}/feedback", json={"request_id": request_id, **scores, **bad}).status_code == 400
    stored = [row for row in Store(served.store_url, store_text=False).ratings() if row["request_id"] == request_id]
    assert [(row["rater_id"], row["helpfulness"], row["logic"]) for row in stored] == [("rater-a", 4, 2)]
    exported = httpx.get(f"{served.url}/ratings", headers={"X-API-Key": API_KEY}).json()["ratings"]
    assert any(row["request_id"] == request_id for row in exported)
    assert httpx.get(f"{served.url}/ratings").status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"question": ""}, "question: the message is empty"),
        ({"question": 42}, "validation error"),
        ({"question": ["a"]}, "validation error"),
        ({}, "validation error"),
        ({"question": "x" * 2001}, "question: too long"),
        ({"question": "ok", "description": "y" * 4001}, "description: too long"),
        ({"question": "ok", "max_new_tokens": 10_000}, "max_new_tokens: must be a whole number from 1 to"),
        ({"question": "ok", "max_new_tokens": 0}, "max_new_tokens"),
    ],
)
@pytest.mark.parametrize("route", ["/answer", "/answer_stream"])
def test_bad_input_gets_a_clear_4xx_and_no_trace(served, route, body, message):
    response = httpx.post(f"{served.url}{route}", json=body, timeout=60)
    assert response.status_code == 400
    assert message in response.text and "Traceback" not in response.text


def test_bytes_that_are_not_json_or_not_utf8_are_refused_clearly(served):
    for raw in (b"not json", b'{"question": "\xff\xfe"}', b"\x00\x01"):
        response = httpx.post(f"{served.url}/answer", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "Invalid JSON" in response.text


def test_the_page_health_readiness_and_metrics(served):
    page = httpx.get(served.url)
    assert page.status_code == 200 and "AI-generated answers, not a clinician" in page.text
    assert "script-src 'unsafe-inline'" in page.headers["content-security-policy"]
    assert httpx.get(f"{served.url}/livez").status_code == 200
    assert httpx.get(f"{served.url}/readyz").status_code == 200
    assert "bentoml_service_request_total" in httpx.get(f"{served.url}/metrics").text
    assert (
        "access-control-allow-origin"
        not in httpx.options(
            f"{served.url}/answer",
            headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
        ).headers
    )  # CORS is off


def test_the_log_never_carries_what_people_wrote(client, served):
    client.answer(question="my secret phrase is bluebird", max_new_tokens=4)
    httpx.post(f"{served.url}/answer", json={"question": ["my secret phrase is bluebird"]})
    log = served.log.read_text()
    assert "request " in log  # the service does log each request, by id
    for written in ("bluebird", "worrying so much", "kill myself"):
        assert written not in log
    assert "Traceback" not in log
