"""detect_language: ISO 639-1 codes, a third language as itself, "und" for too little text."""

import pytest

from components.language import UNDETERMINED, detect_language


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I have been feeling anxious for weeks and I cannot sleep at night.", "en"),
        ("Talking to a counsellor helped me understand why I panic before exams.", "en"),
        ("我最近总是失眠，晚上睡不着，白天很累，不知道该怎么办。", "zh"),
        ("最近很累", "zh"),
        ("我和父母的关系一直不太好，每次回家都会吵架。", "zh"),
        ("Depuis quelques semaines, je me sens très fatigué et je n'arrive plus à dormir la nuit.", "fr"),
        ("Seit einigen Wochen fühle ich mich sehr müde und kann nachts nicht mehr schlafen.", "de"),
        ("Desde hace unas semanas me siento muy cansado y no puedo dormir por la noche.", "es"),
        ("Последние несколько недель я чувствую себя очень уставшим и не могу спать.", "ru"),
        ("私は最近とても疲れていて、夜眠れません。", "ja"),
    ],
)
def test_detects_language(text, code):
    assert detect_language(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "Depuis quelques semaines, je me sens très fatigué et je n'arrive plus à dormir la nuit.",
        "Seit einigen Wochen fühle ich mich sehr müde und kann nachts nicht mehr schlafen.",
    ],
)
def test_third_language_is_not_forced_into_en_or_zh(text):
    assert detect_language(text) not in {"en", "zh", UNDETERMINED}


@pytest.mark.parametrize("text", ["", "   ", "hello", "hello world", "你好", "!!! ??? ...", "I, too."])
def test_fewer_than_three_words_is_undetermined(text):
    assert detect_language(text) == UNDETERMINED == "und"


def test_three_words_is_enough_to_decide():
    assert detect_language("我很累") == "zh"


def test_only_the_start_of_a_long_text_is_read():
    english = "I have been feeling anxious and tired, and I cannot sleep at night. " * 40
    chinese = "我最近总是失眠，晚上睡不着，白天很累。" * 400
    assert len(english) > 2000
    assert detect_language(english + chinese) == "en"
    assert detect_language(chinese + english) == "zh"


def test_chinese_with_a_kaomoji_is_chinese():
    text = "今天终于考完试了，心情好多了，谢谢大家一直以来的鼓励和支持，我会继续努力的。(づ●─●)づ"
    assert detect_language(text) == "zh"


def test_long_chinese_with_a_kaomoji_is_chinese():
    text = "今天终于考完试了，心情好多了，谢谢大家一直以来的鼓励和支持，我会继续努力的。" * 4
    assert detect_language(text + "(づ●─●)づ") == "zh"
