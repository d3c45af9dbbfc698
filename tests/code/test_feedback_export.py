"""`psyllm export-feedback` on campaigns with known judgements: which answers become training pairs, which
questions go to review, what is never exported, and the pairs read back by the loader `prepare` uses."""

import json
import shutil

import pytest

from components import prepare
from components.config import load_params
from components.feedback_export import write_feedback
from components.qa_data import load_qa
from components.serving.campaign_store import CampaignItem, CampaignStore
from components.serving.store import Store
from tests.conftest import PROJECT_ROOT
from tests.data.test_prepare import ENGLISH, NO_BENCHMARK
from tests.pipeline.project import BIN, clone_project, run

SCALES = ("helpfulness", "fluency", "relevance", "logic")


def judge_all(campaigns: CampaignStore, token: str, scores: dict[str, tuple[dict, dict]]) -> None:
    """Judge every item with `scores[item] = (first model's, second model's)`, whichever side each is on."""
    while (item := campaigns.next_item(token)["item"]) is not None:
        first, second = scores[item["item_id"]]
        shown = {"A": first, "B": second} if item["A"].startswith("first") else {"A": second, "B": first}
        campaigns.judge(token, item["item_id"], shown, "tie")


def every(value: float) -> dict[str, float]:
    return dict.fromkeys(SCALES, value)


@pytest.fixture
def store_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    campaigns = CampaignStore(Store(url, store_text=False).engine)
    items = [
        CampaignItem("good", "How do I sleep? Mail me at ana@example.com", "none", "first: rest well", "second: hm"),
        CampaignItem("poor", "How do I stop worrying?", "none", "first: no idea", "second: whatever"),
        CampaignItem("risky", "I want to end it all", "urgent", "first: crisis reply", "second: crisis reply"),
    ]
    tokens = campaigns.create("pilot", ("psyllm/1", "psyllm/2"), items, ["ana", "ben", "cai"])
    # the first model's "good" answer: 5 everywhere from both; the second's relevance averages 3.5
    risky = (every(5), every(5))
    judge_all(campaigns, tokens["ana"], {"good": (every(5), every(5)), "poor": (every(2), every(1)), "risky": risky})
    short = {**every(5), "relevance": 2}
    judge_all(campaigns, tokens["ben"], {"good": (every(5), short), "poor": (every(3), every(2)), "risky": risky})
    campaigns.create("unrated", ("psyllm/1", "psyllm/3"), items[:1], ["dan"])
    solo = campaigns.create("solo", ("psyllm/1", "psyllm/3"), items[:1], ["eve"])["eve"]
    judge_all(campaigns, solo, {"good": (every(5), every(5))})  # one rater: never enough
    return url


def test_only_well_rated_answers_to_unflagged_questions_become_pairs(store_url, tmp_path):
    manifest = write_feedback(CampaignStore(Store(store_url, store_text=False).engine), tmp_path / "feedback")
    assert manifest["pairs"] == 1 and manifest["review"] == 1
    assert manifest["not_exported"] == {
        "screened_out": 1, "too_few_raters": 2, "below_bar": 3, "empty_answer": 0, "urgent_conversation": 0,
    }  # fmt: skip
    pairs = load_qa(tmp_path / "feedback/pairs.jsonl")  # what prepare reads when a profile lists the file
    assert [(pair.question_id, pair.answer) for pair in pairs] == [("pilot:good", "first: rest well")]
    assert "ana@example.com" not in pairs[0].question and "[EMAIL]" in pairs[0].question
    review = [json.loads(line) for line in (tmp_path / "feedback/review.jsonl").read_text().splitlines()]
    assert [(row["item_id"], row["best_mean"]) for row in review] == [("poor", 2.5)]
    exported = (tmp_path / "feedback/pairs.jsonl").read_text() + (tmp_path / "feedback/review.jsonl").read_text()
    assert "end it all" not in exported and "crisis reply" not in exported

    # A profile that lists the export among its Q&A sources trains on it: prepare splits it with the rest.
    config = load_params(PROJECT_ROOT / "params.yaml").profiles["default"].prepare
    sources = [PROJECT_ROOT / path for path in config.qa_sources] + [tmp_path / "feedback/pairs.jsonl"]
    pages = tmp_path / "pages.jsonl"
    pages.write_text(json.dumps({"url": "http://x/", "text": ENGLISH * 2, "sha256": "1"}) + "\n")
    prepared = tmp_path / "prepared"
    prepare.run(config.model_copy(update={"qa_sources": sources}), pages, NO_BENCHMARK, prepared)
    split_texts = "".join(path.read_text() for path in (prepared / "qa").glob("*.jsonl"))
    assert "first: rest well" in split_texts and "second: hm" not in split_texts


def test_the_cli_exports_into_a_dvc_tracked_folder(store_url, tmp_path):
    project = clone_project(tmp_path / "project")
    exported = run(project, str(BIN / "psyllm"), "export-feedback", "--store", store_url)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "export-feedback: 1 pairs (0 from counsellors), 1 questions for review in data/feedback/" in exported.stdout
    assert "counsellors' answers not exported: set PSYLLM_CONSOLE_KEY" in exported.stdout
    assert (project / "data/feedback.dvc").is_file() and "/feedback" in (project / "data/.gitignore").read_text()


def test_outside_a_dvc_project_the_export_is_written_and_said_to_be_unversioned(store_url, tmp_path):
    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    exported = run(tmp_path, str(BIN / "psyllm"), "export-feedback", "--store", store_url, "--out", "exported")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "not a DVC project here, so this export is not versioned" in exported.stdout
    assert len(load_qa(tmp_path / "exported/pairs.jsonl")) == 1 and not (tmp_path / "exported.dvc").exists()
