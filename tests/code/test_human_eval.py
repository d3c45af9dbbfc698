"""Human-evaluation statistics on rating sets whose answers are known: Krippendorff's textbook alpha,
an independent coincidence-matrix computation on random data with gaps, bootstrap summaries, the
sign test, and plain refusals where a statistic cannot be computed."""

import itertools
import math
import random

import pytest

from components.human_eval import NotComputable, blind_comparison, krippendorff_alpha, summarise

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units, gaps.
TEXTBOOK = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def triples(table: dict[str, list[float | None]]) -> list[tuple[str, str, float]]:
    return [(f"u{unit}", rater, v) for rater, row in table.items() for unit, v in enumerate(row) if v is not None]


def reference_alpha(ratings: list[tuple[str, str, float]], level: str) -> float:
    """Alpha from its definition: the coincidence of values within units, observed against expected."""
    units: dict[str, list[float]] = {}
    for unit, _, value in ratings:
        units.setdefault(unit, []).append(value)
    pairs: list[tuple[float, float, float]] = []  # (value, value, weight)
    for values in units.values():
        if len(values) >= 2:
            for i, j in itertools.permutations(range(len(values)), 2):
                pairs.append((values[i], values[j], 1 / (len(values) - 1)))
    distance = (lambda a, b: float(a != b)) if level == "nominal" else (lambda a, b: (a - b) ** 2)
    marginals: dict[float, float] = {}
    for a, _, weight in pairs:
        marginals[a] = marginals.get(a, 0.0) + weight
    total = sum(marginals.values())
    observed = sum(weight * distance(a, b) for a, b, weight in pairs)
    expected = sum(marginals[a] * marginals[b] * distance(a, b) for a in marginals for b in marginals) / (total - 1)
    return 1 - observed / expected


def test_perfect_agreement_is_one():
    ratings = [(f"item{item}", rater, item % 5 + 1) for item in range(10) for rater in ("r1", "r2", "r3")]
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(ratings, level) == pytest.approx(1.0)


def test_krippendorffs_textbook_example():
    assert krippendorff_alpha(triples(TEXTBOOK), "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(triples(TEXTBOOK), "interval") == pytest.approx(0.849, abs=5e-4)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", ["nominal", "interval"])
def test_random_ratings_with_gaps_match_the_definition(seed, level):
    chance = random.Random(seed)
    ratings = [
        (f"item{item}", f"r{rater}", chance.randint(1, 5))
        for item in range(30)
        for rater in range(4)
        if chance.random() < 0.7
    ]
    assert krippendorff_alpha(ratings, level) == pytest.approx(reference_alpha(ratings, level), abs=1e-9)


def test_what_cannot_be_computed_says_why():
    with pytest.raises(NotComputable, match="no ratings"):
        krippendorff_alpha([])
    with pytest.raises(NotComputable, match="no item was rated by two raters"):
        krippendorff_alpha([("a", "r1", 3), ("b", "r1", 4)])
    with pytest.raises(NotComputable, match="every rating has the same value"):
        krippendorff_alpha([("a", "r1", 3), ("a", "r2", 3), ("b", "r1", 3), ("b", "r2", 3)])
    with pytest.raises(NotComputable, match="rated item 'a' twice"):
        krippendorff_alpha([("a", "r1", 3), ("a", "r1", 4)])
    with pytest.raises(NotComputable, match="no ratings"):
        summarise([])
    with pytest.raises(NotComputable, match="no pair was decided"):
        blind_comparison(["tie", "tie"])
    with pytest.raises(NotComputable, match="win, loss or tie"):
        blind_comparison(["A"])


def test_a_summary_is_the_mean_with_an_interval_around_it():
    summary = summarise([1, 2, 3, 4, 5] * 8)
    assert (summary.count, summary.mean) == (40, 3.0)
    assert 1 < summary.low < 3 < summary.high < 5
    assert summarise([4]) == summarise([4])  # one rating: a point, no spread
    assert summarise([4]).low == summarise([4]).high == 4.0
    wide, narrow = summarise([1, 5] * 5), summarise([1, 5] * 50)
    assert narrow.high - narrow.low < wide.high - wide.low  # more ratings, a tighter interval


def test_the_sign_test_counts_decided_pairs_only():
    lopsided = blind_comparison(["win"] * 9 + ["loss"] + ["tie"] * 5)
    assert (lopsided.first_wins, lopsided.second_wins, lopsided.ties) == (9, 1, 5)
    assert lopsided.p_value == pytest.approx(2 * 11 / 1024) and lopsided.significant
    even = blind_comparison(["win", "loss"] * 5 + ["tie"])
    assert even.p_value == pytest.approx(1.0) and not even.significant
    assert not math.isnan(blind_comparison(["loss"]).p_value)
