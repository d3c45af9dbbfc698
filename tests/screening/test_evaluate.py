"""Code layer: the evaluation arithmetic, checked against hand-computed values."""

import pytest

from components.screening.evaluate import score, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),  # Wilson 1927; standard textbook value
        (10, 10, 0.7225, 1.0),
        (0, 10, 0.0, 0.2775),
        (1, 10, 0.0179, 0.4042),
    ],
)
def test_wilson_interval_matches_hand_computed_values(successes, trials, low, high):
    computed = wilson_interval(successes, trials)
    assert computed == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_of_nothing_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_score_counts_the_urgent_table_and_the_level_confusion():
    actual = ["urgent", "urgent", "urgent", "elevated", "none", "none"]
    predicted = ["urgent", "urgent", "elevated", "urgent", "none", "elevated"]
    result = score(actual, predicted, ["a", "a", "b", "c", "d", "d"])
    assert result["urgent_table"] == {"tp": 2, "fn": 1, "fp": 1, "tn": 2}
    assert result["urgent_recall"]["value"] == pytest.approx(2 / 3)
    assert result["urgent_precision"]["value"] == pytest.approx(2 / 3)
    assert result["level_confusion"]["urgent"] == {"none": 0, "elevated": 1, "urgent": 2}
    assert result["level_confusion"]["none"] == {"none": 1, "elevated": 1, "urgent": 0}
    assert result["urgent_correct_by_kind"]["b"] == {"correct": 0, "wrong": 1}


def test_score_splits_urgent_precision_by_what_made_each_flag():
    actual = ["urgent", "urgent", "none", "none", "elevated", "none"]
    predicted = ["urgent", "urgent", "urgent", "urgent", "urgent", "none"]
    bases = ["statement", "classifier", "statement", "classifier", "classifier", None]
    by_basis = score(actual, predicted, bases=bases)["urgent_precision_by_basis"]
    assert (by_basis["statement"]["successes"], by_basis["statement"]["trials"]) == (1, 2)
    assert (by_basis["classifier"]["successes"], by_basis["classifier"]["trials"]) == (1, 3)


def test_score_reports_each_labelling_round_on_its_own():
    actual = ["urgent", "urgent", "none", "urgent", "none", "none"]
    predicted = ["urgent", "none", "urgent", "urgent", "none", "urgent"]
    by_round = score(actual, predicted, rounds=[1, 1, 1, 2, 2, 2])["urgent_by_round"]
    assert by_round["1"]["messages"] == 3 and by_round["2"]["messages"] == 3
    assert (by_round["1"]["urgent_recall"]["successes"], by_round["1"]["urgent_recall"]["trials"]) == (1, 2)
    assert (by_round["1"]["urgent_precision"]["successes"], by_round["1"]["urgent_precision"]["trials"]) == (1, 2)
    assert (by_round["2"]["urgent_recall"]["successes"], by_round["2"]["urgent_recall"]["trials"]) == (1, 1)
    assert (by_round["2"]["urgent_precision"]["successes"], by_round["2"]["urgent_precision"]["trials"]) == (1, 2)
