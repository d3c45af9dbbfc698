"""Human evaluation: the paper's four 1-5 ratings summarised, whether raters agree, and blind comparisons.

The paper judged its models by Helpfulness, Fluency, Relevance and Logic but never said whether
its raters agreed; a mean of ratings nobody agrees on is noise. So every summary here comes with
its uncertainty (a bootstrap interval over the rated items), agreement is Krippendorff's alpha
(any number of raters, gaps allowed, a level of measurement per scale), and a blind A/B preference
is tested with a two-sided sign test on the non-tied pairs. What cannot be computed (no ratings,
one rater, a single value everywhere) raises `NotComputable` saying why, never a division by zero.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import krippendorff
import numpy as np
from scipy.stats import binomtest

from components.bootstrap import LEVEL, RESAMPLES
from components.errors import PsyllmError

Level = Literal["nominal", "ordinal", "interval"]


class NotComputable(PsyllmError, ValueError):
    """A statistic the ratings at hand cannot give; the message says why."""


@dataclass(frozen=True)
class RatingSummary:
    """One model's ratings on one scale: how many, their mean, and a bootstrap interval of the mean."""

    count: int
    mean: float
    low: float
    high: float


def summarise(values: Iterable[float], resamples: int = RESAMPLES, seed: int = 0) -> RatingSummary:
    """Count, mean and 95 % percentile-bootstrap interval of one model's ratings on one scale."""
    ratings = np.asarray(list(values), dtype=float)
    if len(ratings) == 0:
        raise NotComputable("no ratings: nothing to summarise")
    mean = float(ratings.mean())
    if len(ratings) == 1:
        return RatingSummary(1, mean, mean, mean)  # one rating: no spread to resample
    replicates = np.random.default_rng(seed).choice(ratings, size=(resamples, len(ratings))).mean(axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return RatingSummary(len(ratings), mean, float(low), float(high))


def krippendorff_alpha(ratings: Iterable[tuple[str, str, float]], level: Level = "interval") -> float:
    """Krippendorff's alpha over `(item_id, rater_id, value)` triples; a rater may skip items.

    1 is perfect agreement, 0 what chance gives, below 0 systematic disagreement. Only items rated
    by at least two raters carry information about agreement.
    """
    by_item: dict[str, dict[str, float]] = defaultdict(dict)
    for item, rater, value in ratings:
        if rater in by_item[item]:
            raise NotComputable(f"rater {rater!r} rated item {item!r} twice")
        by_item[item][rater] = float(value)
    paired = {item: values for item, values in by_item.items() if len(values) >= 2}
    if not by_item:
        raise NotComputable("no ratings: agreement is undefined")
    if not paired:
        raise NotComputable("no item was rated by two raters: agreement is undefined")
    if len({value for values in paired.values() for value in values.values()}) == 1:
        raise NotComputable("every rating has the same value: agreement is undefined (no variation to agree on)")
    raters = sorted({rater for values in paired.values() for rater in values})
    items = sorted(paired)
    table = np.full((len(raters), len(items)), np.nan)
    for column, item in enumerate(items):
        for rater, value in paired[item].items():
            table[raters.index(rater), column] = value
    return float(krippendorff.alpha(reliability_data=table, level_of_measurement=level))


@dataclass(frozen=True)
class BlindComparison:
    """Preferences between two models shown as A and B: wins for each, ties, and a sign test."""

    first_wins: int
    second_wins: int
    ties: int
    p_value: float  # two-sided sign test on the non-tied pairs

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - LEVEL


def blind_comparison(preferences: Iterable[str]) -> BlindComparison:
    """Each pair's verdict from the first model's side: "win", "loss" or "tie"."""
    counted = {"win": 0, "loss": 0, "tie": 0}
    for verdict in preferences:
        if verdict not in counted:
            raise NotComputable(f"a preference must be win, loss or tie, not {verdict!r}")
        counted[verdict] += 1
    decided = counted["win"] + counted["loss"]
    if decided == 0:
        raise NotComputable("no pair was decided (all ties or none rated): a sign test needs a preference")
    p_value = float(binomtest(counted["win"], decided, 0.5).pvalue)
    return BlindComparison(counted["win"], counted["loss"], counted["tie"], p_value)
