"""Per-question records: the metrics and the paired comparisons are computed from them alone."""

import math

import pytest

from components.errors import PsyllmError
from components.modelling.scoring import QuestionScore, compare, summarize


def record(question_id: str, language: str, nll_per_token: float, tokens: int, rouge: float) -> QuestionScore:
    return QuestionScore(question_id, language, nll_per_token * tokens, tokens, tokens * 4, rouge, "some answer words")


def test_perplexity_is_token_weighted_per_language_and_overall():
    scores = [record("a", "en", 2.0, 100, 0.2), record("b", "en", 3.0, 300, 0.4), record("c", "zh", 4.0, 50, 0.1)]
    summary = summarize(scores)
    assert set(summary) == {"en", "zh", "overall"}
    assert summary["en"]["perplexity"] == pytest.approx(math.exp((200 + 900) / 400))
    assert summary["overall"]["perplexity"] == pytest.approx(math.exp((200 + 900 + 200) / 450))
    assert summary["en"]["rouge_l"] == pytest.approx(0.3) and summary["overall"]["questions"] == 3


def test_a_uniform_gain_is_reported_with_its_interval_in_every_scope():
    reference = [record(str(i), "en" if i % 2 else "zh", math.log(20), 50 + i, 0.20) for i in range(10)]
    challenger = [record(str(i), "en" if i % 2 else "zh", math.log(15), 50 + i, 0.25) for i in range(10)]
    changes = compare(challenger, reference)
    for scope in ("en", "zh", "overall"):
        assert changes[scope]["perplexity"]["value"] == pytest.approx(-0.25)
        assert changes[scope]["perplexity"]["high"] == pytest.approx(-0.25)
        assert changes[scope]["rouge_l"]["low"] == pytest.approx(0.05)


def test_models_scored_on_different_questions_are_not_compared():
    first = [record("a", "en", 2.0, 10, 0.1), record("b", "en", 2.0, 10, 0.1)]
    second = [record("a", "en", 2.0, 10, 0.1), record("c", "en", 2.0, 10, 0.1)]
    with pytest.raises(PsyllmError, match="different questions"):
        compare(first, second)


def test_a_scope_with_one_question_says_why_it_has_no_interval():
    reference = [record("a", "en", 2.0, 10, 0.1), record("b", "en", 2.0, 10, 0.1), record("c", "zh", 2.0, 10, 0.1)]
    changes = compare(reference, reference)
    assert changes["zh"] == {"skipped": "1 question(s): too few for an interval"}
    assert changes["en"]["perplexity"]["value"] == pytest.approx(0.0)
