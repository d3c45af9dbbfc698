"""normalize_text, tokens, word_tokens, cjk_fraction and strip_html."""

import unicodedata

import pytest

from components.text import cjk_fraction, normalize_text, strip_html, tokens, word_tokens


def test_chinese_full_width_punctuation_is_kept():
    text = "你好，世界！（测试）“引号”：；？"
    assert normalize_text(text) == text


def test_nfc_not_nfkc():
    # NFKC would fold full-width letters and the "ﬁ" ligature; NFC keeps them.
    assert normalize_text("ｆｕｌｌ ﬁ") == "ｆｕｌｌ ﬁ"


def test_combining_sequence_is_composed():
    assert normalize_text("cafe\u0301") == "café"
    assert unicodedata.is_normalized("NFC", normalize_text("cafe\u0301"))


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e"])
def test_zero_width_and_invisible_characters_are_removed(invisible):
    assert normalize_text(f"zero{invisible}width") == "zerowidth"


def test_control_characters_are_removed():
    assert normalize_text("a\x00b\x07c\x7f") == "abc"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("one\r\ntwo", "one\ntwo"),
        ("one\rtwo", "one\ntwo"),
        ("one\r\n\r\n\r\n\r\ntwo", "one\n\ntwo"),
    ],
)
def test_line_endings_become_newlines(raw, expected):
    assert normalize_text(raw) == expected


def test_blank_lines_collapse_to_one_and_paragraphs_survive():
    assert normalize_text("first\n\n\n\n\nsecond\n\nthird") == "first\n\nsecond\n\nthird"


def test_whitespace_only_lines_count_as_blank():
    assert normalize_text("first\n   \n\t\n \nsecond") == "first\n\nsecond"


def test_runs_of_spaces_collapse_and_lines_are_stripped():
    assert normalize_text("  a  \t b\u00a0\u00a0c\u3000d  \n  e  ") == "a b c d\ne"


def test_normalize_is_idempotent():
    text = " \ufeffHello\u200b  world\r\n\r\n\r\n你好，\u3000世界 "
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_tokens_cjk_per_character_and_words_lower_cased():
    assert tokens("Hello, World! 我很焦虑。") == ["hello", ",", "world", "!", "我", "很", "焦", "虑", "。"]


def test_tokens_split_mixed_script_without_spaces():
    assert tokens("我有OCD吗") == ["我", "有", "ocd", "吗"]


def test_tokens_handle_kana_and_hangul_per_character():
    assert tokens("ねむい") == ["ね", "む", "い"]
    assert tokens("안녕") == ["안", "녕"]


def test_word_tokens_drop_punctuation_and_keep_numbers():
    assert word_tokens("Hello, World! It's 3 a.m. 我很焦虑。") == [
        "hello", "world", "it", "s", "3", "a", "m", "我", "很", "焦", "虑",
    ]  # fmt: skip


def test_word_tokens_of_punctuation_only_is_empty():
    assert word_tokens("!!! ，。？ ...") == []


@pytest.mark.parametrize(
    ("text", "fraction"),
    [
        ("", 0.0),
        ("!!! ???", 0.0),
        ("hello world", 0.0),
        ("我们", 1.0),
        ("我很焦虑 anxious", 0.8),
        ("I feel 焦虑", 0.5),
    ],
)
def test_cjk_fraction(text, fraction):
    assert cjk_fraction(text) == pytest.approx(fraction)


def test_strip_html_block_ends_become_line_breaks():
    markup = "<p>One</p><p>Two</p>three<br>four<br/><ul><li>a</li><li>b</li></ul><h2>Head</h2><div>five</div>"
    lines = [line for line in strip_html(markup).split("\n") if line]
    assert lines == ["One", "Two", "three", "four", "a", "b", "Head", "five"]


def test_strip_html_inline_tags_are_dropped():
    assert strip_html("<b>bold</b> and <i>italic</i>") == "bold and italic"


def test_strip_html_decodes_entities():
    assert strip_html("Tom &amp; Jerry &lt;3 &#20320;&#x597D; &quot;hi&quot;") == 'Tom & Jerry <3 你好 "hi"'


def test_strip_html_plain_text_is_returned_unchanged():
    assert strip_html("plain text, no markup") == "plain text, no markup"


def test_strip_html_output_normalizes_to_paragraphs():
    markup = "<div><p>I can't sleep.</p>\n\n\n<p>我睡不着。</p></div>"
    assert normalize_text(strip_html(markup)) == "I can't sleep.\n\n我睡不着。"


def test_strip_html_opening_block_does_not_glue_words():
    assert word_tokens(strip_html("Intro<p>First paragraph</p>")) == ["intro", "first", "paragraph"]


def test_strip_html_drops_script_and_style():
    assert strip_html("<style>p {color: red}</style><script>var x = 1;</script><p>hi</p>").strip() == "hi"
