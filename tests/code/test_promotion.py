"""The promotion gate on constructed per-question records: it promotes only on evidence, with every check passed."""

import math

import numpy as np
import pytest

from components.config import PromotionPolicy
from components.gate_evidence import pooled_comparison
from components.human_eval import blind_comparison
from components.modelling.scoring import QuestionScore, compare
from components.promotion import Evidence, HumanEvidence, judge_challenger
from components.serving.campaign_store import CampaignItem, CampaignStore
from components.serving.store import Store

POLICY = PromotionPolicy(
    min_perplexity_gain=0.02,
    max_rouge_l_drop=0.005,
    screening_min_recall=0.95,
    screening_min_precision=0.85,
    screening_real_min_recall=0.95,
    screening_real_min_precision=0.75,
    require_human_comparison=False,
)
HUMAN_POLICY = POLICY.model_copy(update={"require_human_comparison": True})
WRITTEN = {
    "en": {"urgent_recall": 0.98, "urgent_precision": 0.9},
    "zh": {"urgent_recall": 0.97, "urgent_precision": 0.88},
}
REAL = {"en": {"urgent_recall": 0.96, "urgent_precision": 0.8}, "zh": {"urgent_recall": 1.0, "urgent_precision": 0.76}}
SAFE = {"written": WRITTEN, "real": REAL}
SET = "the real benchmark real-v1 (10 questions per source)"


def records(per_token_nll: np.ndarray, rouge: np.ndarray, tokens: np.ndarray) -> list[QuestionScore]:
    return [
        QuestionScore(f"q{i}", "en" if i % 2 else "zh", float(n * t), int(t), int(t) * 3, float(r), "answer")
        for i, (n, r, t) in enumerate(zip(per_token_nll, rouge, tokens, strict=True))
    ]


def evidence_from(perplexity_ratio: float, rouge_gain: float, noise: float, seed: int = 0) -> Evidence:
    """A challenger whose per-token NLL and ROUGE-L differ from the champion's by a known amount plus noise."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(80, 400, size=100)
    champion_nll, champion_rouge = rng.normal(3.0, 0.4, size=100), rng.uniform(0.05, 0.3, size=100)
    challenger_nll = champion_nll + math.log(perplexity_ratio) + rng.normal(0, noise, size=100)
    challenger_rouge = champion_rouge + rouge_gain + rng.normal(0, noise / 10, size=100)
    changes = compare(records(challenger_nll, challenger_rouge, tokens), records(champion_nll, champion_rouge, tokens))
    return Evidence(SET, "champion v1", changes["overall"])


def test_a_clear_gain_on_the_same_questions_promotes_and_quotes_its_intervals():
    decision = judge_challenger(evidence_from(0.90, 0.01, noise=0.05), SAFE, POLICY)
    assert decision.promote, decision.reasons
    assert len(decision.reasons) == 2 + 2 * (len(WRITTEN) + len(REAL))
    assert decision.reasons[0].startswith(f"pass: perplexity vs champion v1 on {SET}: -10.")
    assert "(needs the whole interval below -2.0%)" in decision.reasons[0] and "[" in decision.reasons[1]


def test_a_gain_inside_the_noise_does_not_promote():
    decision = judge_challenger(evidence_from(0.97, 0.0, noise=0.6), SAFE, POLICY)
    assert not decision.promote
    assert decision.reasons[0].startswith("FAIL: perplexity")


def test_a_certain_gain_smaller_than_the_margin_does_not_promote():
    decision = judge_challenger(evidence_from(0.99, 0.0, noise=0.001), SAFE, POLICY)
    assert not decision.promote and decision.reasons[0].startswith("FAIL: perplexity")


def test_a_rouge_l_loss_beyond_the_allowed_drop_blocks_promotion():
    decision = judge_challenger(evidence_from(0.90, -0.02, noise=0.05), SAFE, POLICY)
    assert not decision.promote and decision.reasons[1].startswith("FAIL: ROUGE-L")


@pytest.mark.parametrize(
    ("changes", "problem", "failing"),
    [
        (None, "models compared on different questions or answer tokens", "FAIL: perplexity and ROUGE-L"),
        ({"perplexity": {"value": math.nan, "low": -0.2, "high": -0.1}, "rouge_l": None}, None, "FAIL: perplexity"),
        ({"perplexity": {"value": -0.1, "low": -0.2, "high": -0.05}}, None, "FAIL: ROUGE-L"),
    ],
)
def test_missing_or_incomparable_evidence_never_promotes(changes, problem, failing):
    decision = judge_challenger(Evidence(SET, "champion v1", changes, problem), SAFE, POLICY)
    assert not decision.promote
    assert any(reason.startswith(failing) for reason in decision.reasons), decision.reasons
    if problem:
        assert problem in decision.reasons[0]


def test_screening_below_its_bar_or_missing_blocks_promotion():
    better = evidence_from(0.8, 0.02, noise=0.05)
    weak = {"written": {**WRITTEN, "zh": {"urgent_recall": 0.97, "urgent_precision": 0.83}}, "real": REAL}
    decision = judge_challenger(better, weak, POLICY)
    assert not decision.promote
    assert "FAIL: screening written zh urgent precision 0.830 (needs ≥ 0.850)" in decision.reasons
    assert not judge_challenger(better, {}, POLICY).promote
    partial = {"written": {"en": {"urgent_recall": 0.99}}, "real": REAL}
    assert "FAIL: screening written en urgent precision: missing" in judge_challenger(better, partial, POLICY).reasons


def test_the_real_split_has_its_own_bars_and_must_be_there():
    better = evidence_from(0.8, 0.02, noise=0.05)
    precise_enough = {"written": WRITTEN, "real": {**REAL, "en": {"urgent_recall": 0.95, "urgent_precision": 0.75}}}
    assert judge_challenger(better, precise_enough, POLICY).promote  # 0.75 passes the real bar, not the written one
    missed = {"written": WRITTEN, "real": {**REAL, "zh": {"urgent_recall": 0.9, "urgent_precision": 0.9}}}
    decision = judge_challenger(better, missed, POLICY)
    assert not decision.promote and "FAIL: screening real zh urgent recall 0.900 (needs ≥ 0.950)" in decision.reasons
    decision = judge_challenger(better, {"written": WRITTEN}, POLICY)  # the shared data was absent
    assert not decision.promote and "FAIL: screening real: no evaluation" in decision.reasons


def human(wins: int, losses: int, ties: int = 0) -> HumanEvidence:
    verdicts = ["win"] * wins + ["loss"] * losses + ["tie"] * ties
    return HumanEvidence("psyllm/1", ("pilot",), blind_comparison(verdicts))


def test_with_the_human_policy_a_significant_loss_in_the_blind_comparison_blocks_promotion():
    better = evidence_from(0.8, 0.02, noise=0.05)
    assert judge_challenger(better, SAFE, POLICY, human(1, 15)).promote  # the policy is off: not consulted
    lost = judge_challenger(better, SAFE, HUMAN_POLICY, human(1, 15, ties=2))
    assert not lost.promote
    assert lost.reasons[-1].startswith("FAIL: human blind comparison vs psyllm/1 (pilot): 1 wins, 15 losses, 2 ties")
    assert judge_challenger(better, SAFE, HUMAN_POLICY, human(5, 9)).promote  # a loss inside the noise
    assert judge_challenger(better, SAFE, HUMAN_POLICY, human(15, 1)).promote
    assert judge_challenger(better, SAFE, HUMAN_POLICY, HumanEvidence(None)).promote  # no champion yet


def test_with_the_human_policy_missing_human_evidence_never_promotes():
    better = evidence_from(0.8, 0.02, noise=0.05)
    for missing, reason in (
        (None, "not gathered"),
        (HumanEvidence("psyllm/1"), "no campaign compares them"),
        (HumanEvidence("psyllm/1", ("pilot",)), "(pilot): no pair decided yet"),
    ):
        decision = judge_challenger(better, SAFE, HUMAN_POLICY, missing)
        assert not decision.promote and reason in decision.reasons[-1]


def test_the_gate_pools_every_campaign_between_the_two_versions_from_the_challengers_side(tmp_path):
    campaigns = CampaignStore(Store(f"sqlite:///{tmp_path / 'store.sqlite'}", store_text=False).engine)
    scores = dict.fromkeys(("helpfulness", "fluency", "relevance", "logic"), 3)
    for name, models in (
        ("one", ("psyllm/2", "psyllm/1")),
        ("two", ("psyllm/1", "psyllm/2")),
        ("other", ("psyllm/2", "psyllm/3")),
    ):
        items = [CampaignItem(f"q{n}", "question", "none", "first", "second") for n in range(4)]
        token = campaigns.create(name, models, items, ["ana"])["ana"]
        while (item := campaigns.next_item(token)["item"]) is not None:  # ana always prefers psyllm/2
            side = "A" if (item["A"] == "first") == (models[0] == "psyllm/2") else "B"
            campaigns.judge(token, item["item_id"], {"A": scores, "B": scores}, side)
    pooled = pooled_comparison(campaigns, "psyllm/2", "psyllm/1")
    assert pooled.campaigns == ("one", "two") and pooled.reference == "psyllm/1"
    assert (pooled.comparison.first_wins, pooled.comparison.second_wins, pooled.comparison.ties) == (8, 0, 0)
    assert pooled_comparison(campaigns, "psyllm/4", "psyllm/1").campaigns == ()
