"""The promotion gate on constructed metric pairs: it promotes only when every check passes."""

import math

import pytest

from components.config import PromotionPolicy
from components.promotion import judge_challenger

POLICY = PromotionPolicy(
    min_perplexity_gain=0.02,
    max_rouge_l_drop=0.005,
    min_rouge_l=0.05,
    screening_min_recall=0.95,
    screening_min_precision=0.85,
    screening_real_min_recall=0.95,
    screening_real_min_precision=0.75,
)
WRITTEN = {
    "en": {"urgent_recall": 0.98, "urgent_precision": 0.9},
    "zh": {"urgent_recall": 0.97, "urgent_precision": 0.88},
}
REAL = {"en": {"urgent_recall": 0.96, "urgent_precision": 0.8}, "zh": {"urgent_recall": 1.0, "urgent_precision": 0.76}}
SAFE = {"written": WRITTEN, "real": REAL}
CHAMPION = {"perplexity": 30.0, "rouge_l": 0.12}
BASE = {"perplexity": 42.0, "rouge_l": 0.09}


def test_a_better_challenger_is_promoted_with_every_check_recorded():
    decision = judge_challenger({"perplexity": 29.0, "rouge_l": 0.118}, CHAMPION, BASE, SAFE, POLICY)
    assert decision.promote
    assert len(decision.reasons) == 2 + 2 * (len(WRITTEN) + len(REAL))
    assert all(r.startswith("pass: ") for r in decision.reasons)
    assert "vs champion 30.000 (needs ≤ 29.400" in decision.reasons[0]


@pytest.mark.parametrize(
    ("challenger", "failing"),
    [
        ({"perplexity": 29.5, "rouge_l": 0.13}, "perplexity"),  # better, but by less than 2 %
        ({"perplexity": 30.0, "rouge_l": 0.12}, "perplexity"),  # equal
        ({"perplexity": 31.0, "rouge_l": 0.13}, "perplexity"),  # worse
        ({"perplexity": 25.0, "rouge_l": 0.114}, "ROUGE-L"),  # ROUGE-L fell by more than 0.005
        ({"perplexity": 25.0}, "ROUGE-L: missing"),
        ({"rouge_l": 0.2}, "perplexity: missing for the challenger"),
        ({"perplexity": math.nan, "rouge_l": 0.2}, "perplexity: missing for the challenger"),
        ({"perplexity": None, "rouge_l": 0.2}, "perplexity: missing for the challenger"),
    ],
)
def test_a_challenger_that_is_not_better_or_not_fully_measured_is_not_promoted(challenger, failing):
    decision = judge_challenger(challenger, CHAMPION, BASE, SAFE, POLICY)
    assert not decision.promote
    assert any(reason.startswith(f"FAIL: {failing}") for reason in decision.reasons), decision.reasons


def test_screening_below_its_bar_or_missing_blocks_promotion():
    better = {"perplexity": 20.0, "rouge_l": 0.2}
    weak = {"written": {**WRITTEN, "zh": {"urgent_recall": 0.97, "urgent_precision": 0.83}}, "real": REAL}
    decision = judge_challenger(better, CHAMPION, BASE, weak, POLICY)
    assert not decision.promote
    assert "FAIL: screening written zh urgent precision 0.830 (needs ≥ 0.850)" in decision.reasons
    assert not judge_challenger(better, CHAMPION, BASE, {}, POLICY).promote
    partial = {"written": {"en": {"urgent_recall": 0.99}}, "real": REAL}
    reasons = judge_challenger(better, CHAMPION, BASE, partial, POLICY).reasons
    assert "FAIL: screening written en urgent precision: missing" in reasons


def test_the_real_split_has_its_own_bars_and_must_be_there():
    better = {"perplexity": 20.0, "rouge_l": 0.2}
    precise_enough = {"written": WRITTEN, "real": {**REAL, "en": {"urgent_recall": 0.95, "urgent_precision": 0.75}}}
    # 0.75 passes the real bar, not the written one
    assert judge_challenger(better, CHAMPION, BASE, precise_enough, POLICY).promote
    missed = {"written": WRITTEN, "real": {**REAL, "zh": {"urgent_recall": 0.9, "urgent_precision": 0.9}}}
    decision = judge_challenger(better, CHAMPION, BASE, missed, POLICY)
    assert not decision.promote and "FAIL: screening real zh urgent recall 0.900 (needs ≥ 0.950)" in decision.reasons
    decision = judge_challenger(better, CHAMPION, BASE, {"written": WRITTEN}, POLICY)  # the shared data was absent
    assert not decision.promote and "FAIL: screening real: no evaluation" in decision.reasons


def test_without_a_champion_the_base_model_and_the_floors_apply():
    assert judge_challenger({"perplexity": 40.0, "rouge_l": 0.1}, None, BASE, SAFE, POLICY).promote
    not_below_base = judge_challenger({"perplexity": 41.5, "rouge_l": 0.1}, None, BASE, SAFE, POLICY)
    assert not not_below_base.promote and "vs base model 42.000" in not_below_base.reasons[0]
    under_floor = judge_challenger({"perplexity": 30.0, "rouge_l": 0.04}, None, BASE, SAFE, POLICY)
    assert not under_floor.promote and "no champion" in under_floor.reasons[1]
    assert not judge_challenger({"perplexity": 30.0, "rouge_l": 0.1}, None, None, SAFE, POLICY).promote


def test_a_champion_missing_a_metric_never_lets_a_challenger_through():
    decision = judge_challenger({"perplexity": 20.0, "rouge_l": 0.2}, {"perplexity": 30.0}, BASE, SAFE, POLICY)
    assert not decision.promote and "FAIL: ROUGE-L: missing for the champion" in decision.reasons
