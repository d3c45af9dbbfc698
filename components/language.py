"""Language identification with lingua, returning ISO 639-1 codes ("en", "zh", "fr", ...).

The detector knows a dozen widespread languages besides English and Chinese, so that text
in a third language is labelled as what it is instead of being forced into en or zh.
"""

import re
from functools import cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from components.text import cjk_fraction, word_tokens

UNDETERMINED = "und"
_CANDIDATES = (
    Language.ENGLISH, Language.CHINESE, Language.JAPANESE, Language.KOREAN, Language.FRENCH,
    Language.GERMAN, Language.SPANISH, Language.PORTUGUESE, Language.ITALIAN, Language.DUTCH,
    Language.RUSSIAN, Language.ARABIC, Language.HINDI, Language.VIETNAMESE, Language.INDONESIAN,
    Language.TURKISH,
)  # fmt: skip
_MIN_WORDS = 3
_SAMPLE_CHARS = 2000
_KANA_OR_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af]")
_MOSTLY_HAN = 0.3
# Kaomoji such as (づ●─●)づ put a stray kana or two into Chinese text.
_STRAY_KANA = 2
_MAX_KANA_SHARE_IN_CHINESE = 0.02


@cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_CANDIDATES).build()


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's main language, or "und" when there is too little text.

    Only the first few thousand characters are read: enough for a confident answer, and it
    keeps detection cheap on long documents. Han text with (almost) no kana or Hangul is
    Chinese: the statistical model alone calls some Chinese passages Japanese.
    """
    sample = text[:_SAMPLE_CHARS]
    words = word_tokens(sample)
    if len(words) < _MIN_WORDS:
        return UNDETERMINED
    kana_or_hangul = len(_KANA_OR_HANGUL.findall(sample))
    if cjk_fraction(sample) >= _MOSTLY_HAN and kana_or_hangul <= _STRAY_KANA + _MAX_KANA_SHARE_IN_CHINESE * len(words):
        return "zh"
    language = _detector().detect_language_of(sample)
    return language.iso_code_639_1.name.lower() if language is not None else UNDETERMINED
