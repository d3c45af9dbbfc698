"""shingles, jaccard and NearDuplicateIndex, in English and Chinese."""

import pytest

from components.near_dup import SHINGLE_TOKENS, NearDuplicateIndex, jaccard, shingles
from components.text import word_tokens

PARAGRAPH = (
    "For the past few months I have found it very hard to fall asleep at night. I lie in bed "
    "thinking about work, about money, and about whether my friends are still angry with me after "
    "the argument we had in the spring. By the time I finally sleep it is almost three in the "
    "morning, and when the alarm rings at seven I feel exhausted before the day has even started. "
    "At the office I cannot concentrate, I make small mistakes, and my manager has noticed. I have "
    "tried cutting out coffee and going for walks, but nothing seems to help for long. What else "
    "could I try?"
)
UNRELATED = (
    "My teenage son has stopped talking to us at dinner and spends every evening alone in his room "
    "with the door closed. His grades have dropped this term and his teacher called to say he seems "
    "withdrawn in class. When I try to ask him what is wrong he shrugs and says everything is fine, "
    "and if I push he gets angry and leaves the house. My husband thinks it is a normal phase for a "
    "boy of fifteen, but I am worried that something more serious is going on. How can I reach him "
    "without making things worse between us?"
)
ZH_PARAGRAPH = (
    "最近一段时间我总是睡不好觉，晚上躺在床上脑子里全是工作上的事情，越想越清醒，到了凌晨两三点才能"
    "勉强睡着，早上又要很早起床去上班，白天整个人都没有精神，注意力也不集中，经常出错被领导批评，"
    "我很担心这样下去身体会垮掉，也不知道该怎么调整自己的作息和心态。"
)
ZH_UNRELATED = (
    "我和父母的关系一直不太好，他们总是觉得我选择的专业没有前途，每次回家都会因为这件事情吵架，"
    "我觉得很委屈，也很孤独，身边没有人能理解我的想法，我不知道应该坚持自己的选择还是听从父母的"
    "安排，这种矛盾让我每天都很痛苦。"
)


def lightly_edited(text: str) -> str:
    return text.replace("cutting out coffee", "cutting out tea")


def test_fixture_paragraph_has_about_a_hundred_words():
    assert 95 <= len(word_tokens(PARAGRAPH)) <= 110


def test_shingles_are_overlapping_windows_of_word_tokens():
    assert shingles("One two, three four five six!") == {"one two three four five", "two three four five six"}
    assert len(shingles(PARAGRAPH)) == len(word_tokens(PARAGRAPH)) - SHINGLE_TOKENS + 1


def test_short_text_is_a_single_shingle():
    assert shingles("I feel sad") == {"i feel sad"}
    assert shingles("") == {""}


def test_chinese_shingles_are_character_windows():
    assert shingles("我很焦虑怎么办", size=3) == {"我 很 焦", "很 焦 虑", "焦 虑 怎", "虑 怎 么", "怎 么 办"}


def test_jaccard_bounds_and_symmetry():
    assert jaccard(PARAGRAPH, PARAGRAPH) == 1.0
    assert jaccard("", "") == 1.0
    assert jaccard(PARAGRAPH, UNRELATED) == jaccard(UNRELATED, PARAGRAPH) < 0.05
    assert 0.8 <= jaccard(PARAGRAPH, lightly_edited(PARAGRAPH)) < 1.0


def test_jaccard_ignores_case_and_punctuation():
    assert jaccard("I can't SLEEP at night, at all.", "i can t sleep at night at all") == 1.0


def test_jaccard_chinese():
    edited = ZH_PARAGRAPH.replace("被领导批评", "被老板批评")
    assert 0.8 <= jaccard(ZH_PARAGRAPH, edited) < 1.0
    assert jaccard(ZH_PARAGRAPH, ZH_UNRELATED) < 0.05


@pytest.fixture
def index() -> NearDuplicateIndex:
    return NearDuplicateIndex(threshold=0.8, permutations=128)


def test_edited_copy_is_found_and_unrelated_is_not(index):
    assert index.add("original", PARAGRAPH) == []
    assert index.add("unrelated", UNRELATED) == []
    assert index.similar(lightly_edited(PARAGRAPH)) == ["original"]
    assert index.add("copy", lightly_edited(PARAGRAPH)) == ["original"]


def test_unrelated_text_finds_nothing(index):
    index.add("original", PARAGRAPH)
    assert index.similar(UNRELATED) == []
    assert index.similar(ZH_PARAGRAPH) == []


def test_exact_duplicate_is_found(index):
    index.add("first", PARAGRAPH)
    assert index.add("second", PARAGRAPH) == ["first"]
    assert sorted(index.similar(PARAGRAPH)) == ["first", "second"]


def test_chinese_near_duplicate_is_found(index):
    index.add("zh", ZH_PARAGRAPH)
    index.add("zh-other", ZH_UNRELATED)
    edited = ZH_PARAGRAPH.replace("被领导批评", "被老板批评")
    assert index.similar(edited) == ["zh"]
    assert index.add("zh-edited", edited) == ["zh"]


def test_similar_does_not_store(index):
    index.similar(PARAGRAPH)
    assert index.add("first", PARAGRAPH) == []


def test_signatures_are_deterministic():
    first = NearDuplicateIndex(threshold=0.8, permutations=64).signature(PARAGRAPH)
    second = NearDuplicateIndex(threshold=0.8, permutations=64).signature(PARAGRAPH)
    assert list(first.hashvalues) == list(second.hashvalues)
    assert len(first.hashvalues) == 64


def test_duplicate_key_is_rejected(index):
    index.add("same", PARAGRAPH)
    with pytest.raises(ValueError):
        index.add("same", UNRELATED)


def test_near_duplicates_come_back_oldest_first():
    """Groups name the first message a text repeats, so the answer must not follow LSH's hash order."""
    index = NearDuplicateIndex(threshold=0.8, permutations=64)
    keys = [f"message-{number}" for number in (17, 3, 11, 0, 19, 8, 5, 14, 1, 12, 6, 18, 9, 2, 15, 7, 13, 4, 10, 16)]
    for key in keys:
        index.add(key, "the same question asked again and again by many people")
    assert index.add("latest", "the same question asked again and again by many people") == keys
