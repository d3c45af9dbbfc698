"""`psyllm report` on stored ratings whose summary is known: means, agreement, the plot, and plain words
where there is nothing to compute."""

import pytest

from components.rating_report import write_report
from components.serving.store import IssuedAnswer, Store
from tests.pipeline.project import BIN, run

SCALES = ("helpfulness", "fluency", "relevance", "logic")


def rating(request_id: str, rater: str, model: str, score: int) -> dict:
    return {"request_id": request_id, "rater_id": rater, "model_version": model, **dict.fromkeys(SCALES, score)}


def test_scores_and_agreement_of_known_ratings(tmp_path):
    # Three raters agree exactly on four answers of v1; v2's answers are rated once each.
    raters = ("r1", "r2", "r3")
    ratings = [rating(f"a{answer}", rater, "psyllm/1", answer + 2) for answer in range(4) for rater in raters]
    ratings += [rating(f"b{answer}", "r1", "psyllm/2", 1 + answer % 2) for answer in range(4)]
    report = write_report(ratings, [], tmp_path).read_text()
    assert "16 ratings of 8 answers by 3 raters, for 2 model version(s)" in report
    assert "| psyllm/1 | helpfulness | 12 | 3.50 |" in report and "| psyllm/2 | logic | 4 | 1.50 |" in report
    assert "- helpfulness: 1.000" in report  # perfect agreement where two or more raters rated an answer
    assert (tmp_path / "scores.png").read_bytes().startswith(b"\x89PNG")


def judgement(item: str, rater: str, first: int, second: int, preferred: str) -> dict:
    sides = {f"first_{scale}": first for scale in SCALES} | {f"second_{scale}": second for scale in SCALES}
    return {"item_id": item, "rater_id": rater, "preferred": preferred, **sides}


def test_a_campaign_reports_both_models_agreement_and_the_blind_comparison(tmp_path):
    # Two raters agree on every item: v2 is better on 9 items of 10 and tied on one.
    judgements = [
        judgement(f"q{n}", rater, 2, 4, "second") if n < 9 else judgement(f"q{n}", rater, 3, 3, "tie")
        for n in range(10)
        for rater in ("ana", "ben")
    ]
    campaign = {"name": "pilot", "models": ("psyllm/1", "psyllm/2"), "judgements": judgements}
    report = write_report([], [campaign], tmp_path).read_text()
    assert "## Campaign pilot: psyllm/1 (first) vs psyllm/2 (second)" in report
    assert "20 judgements of 10 items by 2 raters" in report
    assert "| psyllm/1 | fluency | 20 | 2.10 |" in report and "| psyllm/2 | fluency | 20 | 3.90 |" in report
    assert "- relevance: 1.000" in report
    # 18 decided pairs, all lost by the first model: sign test p = 2 * 0.5**18
    assert "| preference | 0 | 18 | 2 | 0.000 | significant |" in report
    assert "| logic | 0 | 18 | 2 | 0.000 | significant |" in report
    assert (tmp_path / "campaign-pilot.png").read_bytes().startswith(b"\x89PNG")


def test_what_cannot_be_computed_is_said_plainly(tmp_path):
    assert "No ratings yet" in write_report([], [], tmp_path / "none").read_text()
    once = write_report([rating("a", "r1", "psyllm/1", 4), rating("b", "r1", "psyllm/1", 2)], [], tmp_path / "once")
    assert "- fluency: not computable (no item was rated by two raters" in once.read_text()
    ties = {"name": "ties", "models": ("psyllm/1", "psyllm/2"), "judgements": [judgement("q", "ana", 3, 3, "tie")]}
    tied = write_report([], [ties], tmp_path / "ties").read_text()
    assert "| preference | 0 | 0 | 1 | - | not computable (no pair was decided" in tied


def test_the_cli_reports_a_services_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = Store(url, store_text=False)
    for request_id, score in (("q1", 5), ("q2", 2)):
        store.record_answer(IssuedAnswer(request_id, "psyllm/3", "none", (), None), urgent=False)
        for rater in ("ana", "ben"):
            store.add_rating(request_id, dict.fromkeys(SCALES, score), rater, None)
    completed = run(tmp_path, str(BIN / "psyllm"), "report", "--store", url, "--out", str(tmp_path / "out"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "report: 4 ratings" in completed.stdout
    report = (tmp_path / "out/report.md").read_text()
    assert "| psyllm/3 | relevance | 4 | 3.50 |" in report and "- logic: 1.000" in report


def test_a_bad_store_url_is_one_clear_line(tmp_path):
    completed = run(tmp_path, str(BIN / "psyllm"), "report", "--store", "not a url")
    assert completed.returncode == 2 and "is not a database URL" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "verb",
    [
        ("report",),
        ("export-feedback",),
        ("campaign", "status", "pilot"),
        ("conversations", "purge", "--older-than", "1"),
    ],
)
def test_a_store_that_is_not_there_is_named_not_created(tmp_path, verb):
    """Read from a mistyped path, an empty store would report nothing and hide the mistake."""
    missing = tmp_path / "typo" / "store.sqlite"
    completed = run(tmp_path, str(BIN / "psyllm"), *verb, "--store", f"sqlite:///{missing}")
    assert completed.returncode == 2 and f"no store at {missing}" in completed.stderr
    assert "Traceback" not in completed.stderr and not missing.parent.exists()
