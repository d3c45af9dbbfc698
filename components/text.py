"""Text normalisation and tokenisation shared by every step that compares text.

CJK has no spaces, so each CJK character is a token and other scripts split into
lower-cased words. Deduplication, language handling and (later) ROUGE-L and Distinct-n
all use `tokens`, so that a "word" means the same thing everywhere.
"""

import re
import unicodedata

import lxml.html

_CJK = (
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"  # Han
    r"\u3040-\u309f\u30a0-\u30ff"  # kana
    r"\uac00-\ud7af"  # Hangul syllables
)
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}\W]+|[^\s\w]", re.UNICODE)
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u3000\u2000-\u200a]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """NFC-normalise, drop invisible and control characters, and tidy whitespace.

    NFC rather than NFKC: NFKC would turn Chinese full-width punctuation into ASCII.
    Paragraph breaks survive (at most one blank line); runs of spaces collapse to one.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", _INVISIBLE.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def tokens(text: str) -> list[str]:
    """Lower-cased words for alphabetic scripts, single characters for CJK, punctuation apart."""
    return [token.lower() for token in _TOKEN.findall(text)]


def word_tokens(text: str) -> list[str]:
    """`tokens` without punctuation: what counts as length or content."""
    return [token for token in tokens(text) if token[0].isalnum() or _CJK_CHAR.match(token)]


def cjk_fraction(text: str) -> float:
    """Share of word tokens that are CJK characters, used to pick shingle sizes and units."""
    words = word_tokens(text)
    if not words:
        return 0.0
    return sum(1 for word in words if _CJK_CHAR.match(word)) / len(words)


_BLOCK_BOUNDARY = re.compile(r"(?i)<br\s*/?>|</?(?:p|div|li|ul|ol|h[1-6]|tr|blockquote)\b[^>]*>")


def strip_html(markup: str) -> str:
    """Visible text of an HTML fragment: scripts and styles dropped, blocks kept as line breaks."""
    if "<" not in markup and "&" not in markup:
        return markup
    fragment = lxml.html.fragment_fromstring(_BLOCK_BOUNDARY.sub("\n", markup), create_parent="div")
    for hidden in list(fragment.iter("script", "style")):
        hidden.drop_tree()
    return fragment.text_content()
