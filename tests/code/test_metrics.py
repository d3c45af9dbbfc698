"""Code layer: the paper's metrics against examples computed by hand, in English and Chinese."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.metrics import NllTotals, distinct_n, rouge_l
from components.text import word_tokens


def test_rouge_l_english_by_hand():
    # LCS of "the cat sat on the mat" / "the cat is on the mat" is "the cat on the mat": 5 of 6 each way.
    assert rouge_l("The cat sat on the mat.", "the cat is on the mat") == pytest.approx(5 / 6)


def test_rouge_l_chinese_scores_characters():
    # 我今天很开心 / 我今天不开心: LCS 我今天开心 = 5 of 6 characters each way.
    assert rouge_l("我今天很开心", "我今天不开心") == pytest.approx(5 / 6)


def test_rouge_l_unequal_lengths_by_hand():
    # prediction 4 tokens, reference 2, LCS 2: P = 2/4, R = 2/2, F = 2PR/(P+R) = 2/3.
    assert rouge_l("try deep breathing exercises", "breathing exercises") == pytest.approx(2 / 3)


def test_rouge_l_mixed_script_tokens():
    # tokens: i, feel, 焦, 虑 vs i, feel, 焦, 躁 -> LCS 3 of 4.
    assert rouge_l("I feel 焦虑", "i feel 焦躁") == pytest.approx(3 / 4)


def test_rouge_l_takes_the_best_of_several_references():
    assert rouge_l("我今天很开心", ["完全不同", "我今天很开心"]) == 1.0


@pytest.mark.parametrize(("prediction", "reference"), [("", "something"), ("something", ""), ("abc", "xyz")])
def test_rouge_l_without_overlap_is_zero(prediction, reference):
    assert rouge_l(prediction, reference) == 0.0


def test_distinct_n_english_by_hand():
    texts = ["a b a b", "a c"]  # 6 tokens; unigrams {a, b, c}; bigrams {ab, ba, ac} (none across texts)
    assert distinct_n(texts, 1) == pytest.approx(3 / 6)
    assert distinct_n(texts, 2) == pytest.approx(3 / 6)


def test_distinct_n_chinese_counts_characters():
    texts = ["好好学习", "天天向上"]  # 8 characters; 6 distinct; bigrams 好好 好学 学习 天天 天向 向上
    assert distinct_n(texts, 1) == pytest.approx(6 / 8)
    assert distinct_n(texts, 2) == pytest.approx(6 / 8)


def test_distinct_n_of_nothing_is_zero_and_n_must_be_positive():
    assert distinct_n([], 2) == 0.0
    with pytest.raises(ValueError, match="at least 1"):
        distinct_n(["a b"], 0)


def test_perplexity_is_token_weighted_and_bits_per_character_compares_tokenizers():
    totals = NllTotals()
    totals.add(nll=math.log(4), tokens=1, characters=2)  # one answer: 1 token at p = 1/4
    totals.add(nll=3 * math.log(4), tokens=3, characters=6)  # another: 3 tokens at p = 1/4
    assert totals.perplexity == pytest.approx(4.0)
    # 4 * ln 4 nats = 8 bits over 8 characters.
    assert totals.bits_per_character == pytest.approx(1.0)


def test_perplexity_over_nothing_is_an_error():
    with pytest.raises(ValueError, match="zero tokens"):
        _ = NllTotals().perplexity


@given(st.text(max_size=60), st.text(max_size=60))
def test_rouge_l_is_a_symmetric_score_in_the_unit_interval(first, second):
    score = rouge_l(first, second)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(rouge_l(second, first))


@given(st.text(min_size=1, max_size=60))
def test_rouge_l_of_a_text_with_itself_is_one_when_it_has_tokens(text):
    assert rouge_l(text, text) == (1.0 if word_tokens(text) else 0.0)
