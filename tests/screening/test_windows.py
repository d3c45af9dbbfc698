"""Sentence windows and languages: how a message is split into what the heads read, and which heads read it."""

import numpy as np

from components.screening.labelled import LEVELS
from components.screening.units import Units, highest_per_message


def windows(message: str) -> list[str]:
    units = Units.of([message])
    return [text for text, whole in zip(units.texts, units.whole, strict=True) if not whole]


def test_short_messages_are_read_whole_and_long_ones_also_in_overlapping_windows_of_three():
    assert windows("I can't sleep.") == []
    assert windows("I can't sleep. Work is hard. I argue a lot.") == []
    assert windows("one. two! three? four") == ["one. two! three?", "two! three? four"]
    assert windows("我睡不着。工作很累。我想找人聊聊。我很孤单。") == [
        "我睡不着。 工作很累。 我想找人聊聊。",
        "工作很累。 我想找人聊聊。 我很孤单。",
    ]


def test_each_unit_remembers_where_it_lies_in_its_message():
    message = "  one.  two!\nthree? four "
    units = Units.of([message])
    assert units.spans.tolist() == [[0, len(message)], [2, 19], [8, 24]]
    windows_read = [message[start:end] for start, end in units.spans[1:].tolist()]
    assert windows_read == ["one.  two!\nthree?", "two!\nthree? four"]


def test_units_keep_each_message_whole_first_and_remember_their_owner():
    units = Units.of(["short one.", "a. b. c. d."])
    assert units.texts == ["short one.", "a. b. c. d.", "a. b. c.", "b. c. d."]
    assert units.owner.tolist() == [0, 1, 1, 1] and units.whole.tolist() == [True, True, False, False]


def test_only_the_windows_of_messages_without_risk_become_training_negatives():
    units = Units.of(["a. b. c. d.", "e. f. g. h."])  # message 0 is "none", message 1 "urgent"
    levels = np.asarray([LEVELS.index("none"), LEVELS.index("urgent")])
    rows = units.training_rows(np.asarray([0, 1]), levels)
    assert [units.texts[row] for row in rows] == ["a. b. c. d.", "a. b. c.", "b. c. d.", "e. f. g. h."]
    assert units.training_rows(np.asarray([1]), levels).tolist() == [3]  # held-out messages add nothing


def test_a_message_scores_as_its_highest_unit():
    rows = np.asarray([[0.1, 0.2], [0.9, 0.3], [0.4, 0.8], [0.05, 0.1]])
    assert highest_per_message(rows, np.asarray([0, 0, 0, 1]), 2).tolist() == [[0.9, 0.8], [0.05, 0.1]]


def test_english_heads_read_a_chinese_message_only_when_english_is_a_real_part_of_it():
    from components.screening.normalize import fold
    from components.screening.screener import languages_in

    assert languages_in(fold("I can't sleep")) == ["en"]
    assert languages_in(fold("我睡不着")) == ["zh"]
    assert languages_in(fold("我真的 want to die，撑不下去了")) == ["en", "zh"]
    assert languages_in(fold("我好 emo 啊")) == ["zh"]
    long_chinese = "我最近总是睡不着，白天上课也没精神。" * 40 + "我下载了一个 app 来记录睡眠，还做了 PHQ-9 问卷。"
    assert languages_in(fold(long_chinese)) == ["zh"]
