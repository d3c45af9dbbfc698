"""A rating campaign end to end on the smoke models: `psyllm campaign create` answers a question set with a
registered version and a model folder, two raters work through it on the served service (one in a real
Chromium on the /rate page, one over HTTP) with both sides shown, and `psyllm report` summarises it."""

import json
import re
import shutil
import sqlite3
import subprocess

import httpx
import pytest
from mlflow import MlflowClient

import components.campaign
from components.campaign import create_campaign
from components.errors import PsyllmError
from components.qa_data import load_qa
from components.serving.campaign_store import CampaignStore
from components.serving.store import Store
from tests.pipeline.project import BIN, clone_project, run
from tests.serving.conftest import CHROMIUM, FLAGS

QUESTIONS = [
    {"id": "sleep", "question": "How can I sleep better before exams?"},
    {"id": "friends", "question": "I feel left out by my friends.", "description": "It started after I moved."},
    {"id": 3, "question": "最近总是很焦虑，怎么办？"},
]
SCORES = dict.fromkeys(("helpfulness", "fluency", "relevance", "logic"), 4)  # every answer good enough to export


@pytest.fixture(scope="module")
def campaign(smoke_project, served, tmp_path_factory):
    """A campaign `pilot` in the served service's store, and each rater's token."""
    folder = tmp_path_factory.mktemp("campaign")
    project = clone_project(folder / "project")
    questions = folder / "questions.jsonl"
    questions.write_text("".join(json.dumps(line) + "\n" for line in QUESTIONS), encoding="utf-8")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{smoke_project / 'mlruns/mlflow.db'}",  # the report adds human_eval/
        "PSYLLM_SCREENER_DIR": str(smoke_project / "data/screener"),
    }

    def create(name: str, models: str, questions_file: str = str(questions)) -> subprocess.CompletedProcess[str]:
        return run(
            project, str(BIN / "psyllm"), "campaign", "create", "--name", name, "--questions", questions_file,
            "--models", models, "--raters", "ana,ben", "--store", served.store_url, "--max-new-tokens", "8",
            "--url", served.url, **env,
        )  # fmt: skip

    models = f"models:/psyllm@challenger,{smoke_project / 'data/models/finetuned/base'}"
    created = create("pilot", models)
    assert created.returncode == 0, created.stdout + created.stderr
    links = dict(re.findall(r"^  (\w+): (\S+)$", created.stdout, re.MULTILINE))
    assert set(links) == {"ana", "ben"} and all(link.startswith(f"{served.url}/rate#") for link in links.values())
    return {"tokens": {rater: link.split("#", 1)[1] for rater, link in links.items()}, "create": create,
            "project": project, "env": env, "questions": questions}  # fmt: skip


def test_bad_campaigns_are_refused_before_any_model_answers(campaign, smoke_project, served, tmp_path, monkeypatch):
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"id": "a", "question": "fine"}\n{"id": "b", "question": ""}\n', encoding="utf-8")
    folder = str(smoke_project / "data/models/finetuned/base")
    refused = campaign["create"]("second", f"models:/psyllm@nosuch,{folder}")
    assert refused.returncode == 2 and "no version of 'psyllm' holds the alias 'nosuch'" in refused.stderr
    assert "Traceback" not in refused.stderr and "answers 3 questions" not in refused.stderr

    def generated(*_: object) -> None:
        raise AssertionError("a model answered a campaign that should have been refused")

    monkeypatch.chdir(campaign["project"])  # its params.yaml; none of these cases reaches the registry
    monkeypatch.setenv("PSYLLM_SCREENER_DIR", campaign["env"]["PSYLLM_SCREENER_DIR"])
    monkeypatch.setattr(components.campaign, "_answers", generated)  # the fault: answering at all
    store = Store(served.store_url, store_text=False)
    for name, models, message in (
        ("pilot", ["models:/psyllm@challenger", folder], "campaign 'pilot' exists already"),
        ("second", [folder], "a blind comparison needs exactly two models, got 1"),
        ("second", [folder, folder], "compare two different versions"),
        ("second", ["models:/psyllm@challenger", folder], "bad.jsonl:2: question: the message is empty"),
        ("bad name!", ["models:/psyllm@challenger", folder], "campaign 'bad name!': use 1-100 letters"),
    ):
        with pytest.raises(PsyllmError, match=re.escape(message)):
            create_campaign(store, name, bad_line if "bad.jsonl" in message else campaign["questions"], models, ["x"])
    assert CampaignStore(store.engine).names() == ["pilot"]


def test_two_raters_judge_blind_resume_and_the_report_compares_the_models(campaign, served, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    tokens = campaign["tokens"]
    with httpx.Client(base_url=served.url, timeout=30) as api:
        # ben over HTTP: refusals first, then every item, the first one twice
        first = api.post("/rate/next", json={"token": tokens["ben"]}).json()
        assert first["progress"] == {"done": 0, "total": 3} and set(first["item"]) == {"item_id", "question", "A", "B"}
        item = first["item"]["item_id"]
        for body, status, message in (
            ({"token": "forged", "item_id": item, "A": SCORES, "B": SCORES, "preference": "A"}, 403, "not valid"),
            ({"token": tokens["ben"], "item_id": item, "A": SCORES, "B": {**SCORES, "logic": 0}, "preference": "A"},
             400, "B.logic: must be a whole number from 1 to 5"),
            ({"token": tokens["ben"], "item_id": "nope", "A": SCORES, "B": SCORES, "preference": "A"}, 404, "nope"),
        ):  # fmt: skip
            refused = api.post("/rate/judge", json=body)
            assert refused.status_code == status and message in refused.json()["error"]
        while (shown := api.post("/rate/next", json={"token": tokens["ben"]}).json()["item"]) is not None:
            body = {"token": tokens["ben"], "item_id": shown["item_id"], "A": SCORES, "B": SCORES, "preference": "B"}
            assert api.post("/rate/judge", json=body).status_code == 200
        assert api.post("/rate/judge", json={**body}).status_code == 409  # never twice

    with sync_playwright() as playwright:  # ana in a browser: one item, leave, come back, finish
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        for done_before, items in ((0, 1), (1, 2)):
            page.goto(f"{served.url}/rate#{tokens['ana']}")
            for done in range(done_before, done_before + items):
                page.get_by_text(f"{done} of 3 rated.").wait_for(timeout=30_000)
                for side in ("A", "B"):
                    for scale, score in SCORES.items():
                        page.get_by_label(f"{scale.capitalize()} of {side}").select_option(str(score))
                page.get_by_role("radio", name="Answer A").check()
                page.get_by_role("button", name="Save and show the next question").click()
            page.get_by_text("1 of 3 rated." if done_before == 0 else "All done: 3 of 3 rated.").wait_for()
        browser.close()

    judgements = CampaignStore(Store(served.store_url, store_text=False).engine).campaign("pilot")["judgements"]
    for rater in ("ana", "ben"):  # each rater saw the first model on both sides
        assert {row["first_shown_as"] for row in judgements if row["rater_id"] == rater} == {"A", "B"}
    status = run(campaign["project"], str(BIN / "psyllm"), "campaign", "status", "pilot", "--store", served.store_url)
    assert status.stdout.split("\n")[:2] == ["ana: 3/3", "ben: 3/3"], status.stdout + status.stderr
    out = tmp_path / "report"
    reported = run(
        campaign["project"], str(BIN / "psyllm"), "report", "--store", served.store_url, "--out", str(out),
        MLFLOW_TRACKING_URI=campaign["env"]["MLFLOW_TRACKING_URI"], PREFECT_HOME=str(tmp_path / "prefect"),
    )  # fmt: skip
    assert reported.returncode == 0, reported.stdout + reported.stderr
    registered = re.search(r"logged to the register run of (psyllm/(\d+))", reported.stdout)
    assert registered, reported.stdout  # the challenger version; the model folder is not in the registry
    client = MlflowClient(tracking_uri=campaign["env"]["MLFLOW_TRACKING_URI"])
    register_run = client.get_model_version("psyllm", registered[2]).tags["psyllm.register_run"]
    assert "human_eval/report.md" in [item.path for item in client.list_artifacts(register_run, "human_eval")]
    report = (out / "report.md").read_text()
    with sqlite3.connect(tmp_path / "prefect/prefect.db") as prefect_db:  # the flow's temporary API kept it
        published = prefect_db.execute("SELECT data FROM artifact WHERE key = 'human-ratings'").fetchall()
    assert len(published) == 1 and "## Campaign pilot" in json.loads(published[0][0])
    assert re.search(r"## Campaign pilot: psyllm/\d+ \(first\) vs \S+/finetuned/base \(second\)", report)
    assert "6 judgements of 3 items by 2 raters" in report
    assert (out / "campaign-pilot.png").read_bytes().startswith(b"\x89PNG")
    # ana preferred A and ben B on every item; the sides vary per rater and item, so the verdicts mix
    preference = re.search(r"\| preference \| (\d+) \| (\d+) \| 0 \|", report)
    assert preference and int(preference[1]) + int(preference[2]) == 6

    # Both raters gave every answer 4s: each answer to a question screened as no risk becomes a pair
    exported = run(campaign["project"], str(BIN / "psyllm"), "export-feedback", "--store", served.store_url)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    manifest = json.loads((campaign["project"] / "data/feedback/manifest.json").read_text())
    pairs = load_qa(campaign["project"] / "data/feedback/pairs.jsonl")
    left_out = manifest["not_exported"]  # the tiny model sometimes answers only whitespace: no pair
    assert len(pairs) == manifest["pairs"] == 2 * (3 - left_out["screened_out"]) - left_out["empty_answer"] > 0
    assert (campaign["project"] / "data/feedback.dvc").is_file()
