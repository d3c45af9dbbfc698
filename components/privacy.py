"""PII scrubbing, applied to every text before it can reach training.

Each kind of personal data is replaced by a typed placeholder, so the model still learns
that "someone gave a phone number here" without learning anyone's number:
[EMAIL], [PHONE], [ADDRESS], [ID], [CARD], [URL] and [HANDLE]. Public helpline numbers
(crisis lines) are not personal data and are kept: they are what a good answer cites.
"""

import dataclasses
import re
from collections.abc import Callable

from components.qa_data import QAPair

# Characters of Chinese place names: CJK, minus words that usually come just before an address.
_NAME = r"[^\W\d_a-zA-Z我你他她它们在住是的了到从去来和与及就也都要把被给向对为搬家址:：，。]"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)

# URLs that point at a person: profile paths, user-id query parameters, social-network accounts.
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'，。）)]+", re.IGNORECASE)
_PERSONAL_URL = re.compile(
    r"/(?:u|user|users|profile|profiles|people|member|members|home\.php|space|id)/[^/\s]+"
    r"|[?&](?:uid|user_?id|userid|profile_?id|member_?id)="
    r"|(?<![\w-])(?:facebook|instagram|twitter|x|tiktok|weibo|douban|zhihu|linkedin)\.com/(?!$)[^\s]+",
    re.IGNORECASE,
)

_CN_RESIDENT_ID = re.compile(r"(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?![\dA-Za-z])")
_US_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_CARD_CANDIDATE = re.compile(r"(?<!\d)(?:(?:\d{4}[ -]?){3}\d{4}(?:\d{3})?|\d{4}[ -]?\d{6}[ -]?\d{5}|\d{13,19})(?!\d)")
_ACCOUNT_ID = re.compile(
    r"(?:(?<=QQ)|(?<=qq)|(?<=微信)|(?<=微信号)|(?<=wechat)|(?<=WeChat))\s*(?:号)?\s*[:：]?\s*[A-Za-z0-9_-]{5,20}"
)

_PHONE = re.compile(
    r"(?<![0-9A-Za-z+])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"  # international
    r"|(?:1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}"  # North American
    r"|1[3-9]\d(?:[\s-]?\d{4}){2}"  # mainland China mobile
    r"|\(?0\d{1,4}\)?[\s-]?\d{3,4}[\s-]?\d{3,4}"  # trunk-prefixed landlines (CN, UK, AU)
    r")(?![0-9A-Za-z])"
)
# Public services whose numbers belong in answers: emergency and crisis lines.
_PUBLIC_NUMBERS = {
    "988", "116123", "131114", "12356", "01082951332", "4001619995", "18002738255", "741741",
    "08457909090", "1300224636", "4008821111", "02162783362",
}  # fmt: skip

_EN_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\.?\s+){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace"
    r"|Close|Crescent|Parkway|Pkwy|Highway|Hwy|Square|Sq)\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|Flat)\.?\s*#?\s*\w+)?"
)
_CN_STREET = re.compile(
    rf"(?:{_NAME}{{2,3}}(?:省|自治区))?(?:{_NAME}{{2,4}}(?:市|区|县))*"
    rf"{_NAME}{{2,8}}(?:路|街|大街|大道|巷|弄|胡同)\s*\d+\s*号"
    rf"(?:\s*{_NAME}{{0,6}}?\d+\s*(?:号楼|栋|幢|座|单元|楼|层|室))*"
    rf"|{_NAME}{{2,8}}(?:小区|花园|公寓|新村)\s*\d+\s*(?:号楼|栋|幢|座)(?:\s*\d+\s*(?:单元|层|室))*"
)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _luhn_valid(number: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _url(match: re.Match[str]) -> str:
    url = match.group().rstrip(".,;:!?")
    return "[URL]" + match.group()[len(url) :] if _PERSONAL_URL.search(url) else match.group()


def _card(match: re.Match[str]) -> str:
    return "[CARD]" if _luhn_valid(_digits(match.group())) else match.group()


def _phone(match: re.Match[str]) -> str:
    digits = _digits(match.group())
    if digits in _PUBLIC_NUMBERS or not 7 <= len(digits) <= 15:
        return match.group()
    return "[PHONE]"


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (_URL, _url),
    (_EMAIL, lambda _: "[EMAIL]"),
    (_CN_RESIDENT_ID, lambda _: "[ID]"),
    (_US_SSN, lambda _: "[ID]"),
    (_CARD_CANDIDATE, _card),
    (_ACCOUNT_ID, lambda match: re.sub(r"[A-Za-z0-9_-]{5,20}$", "[HANDLE]", match.group())),
    (_PHONE, _phone),
    (_EN_STREET, lambda _: "[ADDRESS]"),
    (_CN_STREET, lambda _: "[ADDRESS]"),
)


def scrub_pii(text: str) -> str:
    """Replace personal data in English or Chinese text with typed placeholders."""
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text


def scrub_pair(pair: QAPair) -> QAPair:
    """A Q&A pair with PII scrubbed from its question, description and answer."""
    return dataclasses.replace(
        pair,
        question=scrub_pii(pair.question),
        description=scrub_pii(pair.description),
        answer=scrub_pii(pair.answer),
    )
