"""Folding a message into the form the screening rules and models read.

People in crisis write fast: slang ("kms", "unalive"), euphemisms ("sewer slide", 紫砂),
stretched letters ("pleaseee"), leetspeak and full-width letters. Folding these onto
plain forms lets a handful of curated patterns and a small trained model see through them.
"""

import re
import unicodedata

MAX_MESSAGE_CHARS = 20_000
SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")

_INVISIBLE = re.compile(r"[\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff\u00ad\x00-\x08\x0b-\x1f\x7f]")
_STRETCHED = re.compile(r"(\w)\1{2,}")
_SPACES = re.compile(r"[ \t\u3000]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "@": "a", "$": "s"})
_LEET_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[0-9@$])[a-z0-9@$]{3,}\b")

# Euphemisms and common misspellings, folded onto the words the patterns look for.
_SLANG_EN: tuple[tuple[str, str], ...] = (
    (r"\bsewer ?slides?\b|\bsu[iy]?c[iy]?d[ea]?\b|\bsuicdie\b|\bsuiside\b|\bsuicied\b|\bsucide\b", "suicide"),
    (r"\bsuicid[ae]l+\b|\bsuicidle\b|\bsucidal\b|\bsuicidel\b|\bsuisidal\b", "suicidal"),
    (r"\bkms\b|\bkil+ my ?self\b|\bkill my ?sel\b|\bkill my self\b|\bunalive (?:my ?self|me)\b", "kill myself"),
    (r"\bunalive\b", "kill myself"),
    (r"\bkys\b", "kill yourself"),
    (r"\bmy ?self\b", "myself"),
    (r"\bwanna\b", "want to"),
    (r"\bgonna\b", "going to"),
    (r"\bgotta\b", "got to"),
    (r"\bi'?m+a\b|\bimma\b", "i am going to"),
    (r"\bi'?m\b", "i'm"),
    (r"\bdont\b", "don't"),
    (r"\bcant\b", "can't"),
    (r"\bwont\b", "won't"),
    (r"\btn\b|\btonite\b|\b2nite\b|\b2night\b", "tonight"),
    (r"\brn\b", "right now"),
    (r"\bu\b", "you"),
    (r"\bpils\b|\bpillz\b", "pills"),
    (r"\bod\b", "overdose"),
)
_SLANG_ZH: tuple[tuple[str, str], ...] = (
    (r"紫砂|自鲨|自sha|zisha|zi sha", "自杀"),
    (r"(想|要|去)(噶|嘎)(了)?", r"\1死"),
    (r"xiang ?si", "想死"),
)
_SLANG = tuple((re.compile(pattern), replacement) for pattern, replacement in (*_SLANG_EN, *_SLANG_ZH))


def _clean_input(text: str) -> str:
    """Make any Python string safe to process: lone surrogates and control characters go."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _INVISIBLE.sub(" ", text)


def fold(text: str) -> str:
    """The lower-cased, NFKC-folded, slang-expanded text that rules and models read."""
    text = unicodedata.normalize("NFKC", _clean_input(text)).lower()
    text = text.replace("’", "'").replace("‘", "'")
    text = _STRETCHED.sub(r"\1\1", text)
    text = _LEET_WORD.sub(lambda match: match.group(0).translate(_LEET), text)
    for pattern, replacement in _SLANG:
        text = pattern.sub(replacement, text)
    return _SPACES.sub(" ", text).strip()
