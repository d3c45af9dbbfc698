"""Paired bootstrap intervals for comparing two models on the same questions.

Two models scored on the same questions differ less from question to question than the
questions differ among themselves, so the comparison resamples questions, the unit that was
drawn, and recomputes each model's statistic on the same resample. Perplexity is a ratio of sums
(total NLL over total tokens), so it is recomputed from the resampled sums rather than averaged
per question. Percentile intervals: simple, and sound for these smooth statistics at a hundred
questions or more.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A statistic and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def _resample_indices(questions: int, resamples: int, seed: int) -> np.ndarray:
    if questions < 2:
        raise ValueError(f"a bootstrap needs at least 2 questions, got {questions}")
    return np.random.default_rng(seed).integers(0, questions, size=(resamples, questions))


def _interval(value: float, replicates: np.ndarray, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(value=float(value), low=float(low), high=float(high))


def perplexity_change(
    challenger_nll: Sequence[float],
    reference_nll: Sequence[float],
    tokens: Sequence[int],
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Interval:
    """Relative change of token-weighted perplexity, challenger over reference minus 1 (−0.05: 5 % lower).

    Per question: the summed answer NLL (nats) under each model and the number of answer tokens
    it was summed over, which both models share because they share a tokenizer.
    """
    challenger, reference, counts = (np.asarray(x, dtype=float) for x in (challenger_nll, reference_nll, tokens))
    if not len(challenger) == len(reference) == len(counts):
        raise ValueError("perplexity_change needs one NLL and token count per question for both models")
    value = np.exp((challenger.sum() - reference.sum()) / counts.sum()) - 1
    picks = _resample_indices(len(counts), resamples, seed)
    replicates = np.exp((challenger[picks].sum(axis=1) - reference[picks].sum(axis=1)) / counts[picks].sum(axis=1)) - 1
    return _interval(value, replicates, level)


def mean_difference(
    challenger: Sequence[float],
    reference: Sequence[float],
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Interval:
    """Mean per-question difference, challenger minus reference (ROUGE-L, for example)."""
    differences = np.asarray(challenger, dtype=float) - np.asarray(reference, dtype=float)
    picks = _resample_indices(len(differences), resamples, seed)
    return _interval(differences.mean(), differences[picks].mean(axis=1), level)
