"""The paired bootstrap on constructed per-question scores whose true answer is known."""

import math

import numpy as np
import pytest

from components.bootstrap import mean_difference, perplexity_change


def test_a_uniform_perplexity_gain_is_exact_and_certain():
    tokens = [40, 120, 75, 300]
    reference = [count * math.log(20) for count in tokens]
    challenger = [count * math.log(18) for count in tokens]
    interval = perplexity_change(challenger, reference, tokens)
    assert interval.value == pytest.approx(-0.10)
    assert interval.low == pytest.approx(-0.10) and interval.high == pytest.approx(-0.10)


def test_perplexity_weights_tokens_not_questions():
    # One long answer 10 % better, three short ones 50 % worse: the long answer dominates the tokens.
    tokens = [1000, 10, 10, 10]
    reference = [count * math.log(20) for count in tokens]
    challenger = [1000 * math.log(18)] + [count * math.log(30) for count in tokens[1:]]
    expected = math.exp((sum(challenger) - sum(reference)) / sum(tokens)) - 1
    assert perplexity_change(challenger, reference, tokens).value == pytest.approx(expected)
    assert expected < 0


def test_noise_around_no_change_gives_an_interval_across_zero():
    rng = np.random.default_rng(3)
    tokens = rng.integers(50, 400, size=120)
    reference = tokens * (3.0 + rng.normal(0, 0.3, size=120))
    challenger = reference + tokens * rng.normal(0, 0.05, size=120)
    interval = perplexity_change(challenger, reference, tokens)
    assert interval.low < 0 < interval.high


def test_mean_difference_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    true_difference, covered, trials = 0.02, 0, 300
    for trial in range(trials):
        reference = rng.uniform(0.1, 0.3, size=100)
        challenger = reference + rng.normal(true_difference, 0.05, size=100)
        interval = mean_difference(challenger, reference, resamples=1000, seed=trial)
        covered += interval.low <= true_difference <= interval.high
    assert 0.90 <= covered / trials <= 0.98


def test_one_question_is_refused():
    with pytest.raises(ValueError, match="at least 2 questions"):
        mean_difference([0.3], [0.2])
    with pytest.raises(ValueError, match="one NLL and token count per question"):
        perplexity_change([1.0, 2.0], [1.0], [3, 4])
