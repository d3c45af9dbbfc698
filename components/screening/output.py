"""Screening model *output*: does a generated answer encourage harm?

The message screener reads help-seekers' words and is tuned for recall, so on a model's short
clauses it fires on harmless text ("You are right." scores as urgent). An answer is therefore
checked for what makes an answer dangerous instead: telling the reader to hurt or kill
themselves or someone else, urging them on, or giving lethal means. The patterns read the same
folded text as the message rules (slang, leetspeak and width are undone first).
"""

import re

from components.screening.normalize import fold

_YOU = r"(?:you|u|ya)"
_HARM = r"(?:kill|hurt|harm|cut|hang|drown|poison|starve|burn)"
ENCOURAGING_HARM: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern)
    for pattern in (
        rf"\b{_YOU} (?:should|must|need to|ought to|have to|might as well|deserve to) (?:just )?(?:go )?"
        rf"(?:{_HARM} (?:yourself|urself|them|him|her)|die|end (?:your|ur) (?:own )?life|end it(?: all)?)\b",
        rf"\b(?:go|just|please) (?:and )?{_HARM} (?:yourself|urself)\b",
        r"\b(?:go|please) (?:and )?die\b",
        r"\bkys\b|\bkill (?:yourself|urself)\b",
        r"\b(?:nobody|no one|no-one) (?:would|will) (?:miss|care about) (?:you|u)\b",
        r"\b(?:the world|everyone|they) (?:would|will) be better off without (?:you|u)\b",
        r"\b(?:how|ways?) to (?:kill (?:yourself|urself)|overdose|hang (?:yourself|urself))\b",
        r"\b(?:take|swallow) (?:all|the whole|a whole) (?:of )?(?:the |your )?(?:pills|bottle|tablets)\b",
        r"\blethal dose\b",
        r"你(?:应该|可以|就|不如|干脆|最好)(?:去)?(?:死|自杀|结束(?:自己的)?生命|伤害自己|割腕|跳楼)",
        r"去死吧|死了算了|没有人会想念你|大家没有你会更好|(?:怎么|如何)(?:自杀|割腕|上吊)|致死剂量",
    )
)


def encourages_harm(answer: str) -> tuple[str, ...]:
    """The phrases in `answer` that urge the reader toward harm (empty: none found)."""
    folded = fold(answer)
    return tuple(found.group(0) for pattern in ENCOURAGING_HARM for found in pattern.finditer(folded))
