"""`screen(text)`: the triage verdict every answer path asks for before any model text.

A message is folded (slang, leetspeak, width), matched against the curated patterns in
context, and scored by the learned heads of each script it contains, so code-mixed text
("我真的 want to die") is read by both languages' heads. `decide.decide_level` combines them.
One message takes milliseconds on a CPU (see bench/screening.py).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from components.errors import PsyllmError
from components.screening.decide import HEADS, Scorer, categories_for, decide_level, message_probabilities, rule_verdict
from components.screening.labelled import CATEGORIES, LANGUAGES, Category, Language, Level
from components.screening.normalize import MAX_MESSAGE_CHARS, fold
from components.screening.rules import Match, find_matches

MANIFEST_FILE = "screener.json"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z]{2,}")


# Why a message is urgent: an explicit statement the rules read in its context, or the classifier alone.
# Counsellors see it, and their queue puts statements first: on the real train split's out-of-fold
# scores every statement flag was urgent and few classifier-only flags were (README: screening).
Basis = Literal["statement", "classifier"]


class InvalidMessage(PsyllmError, ValueError):
    """The input is not something a person could have written: not text, empty or too long."""


@dataclass(frozen=True)
class Screening:
    """The verdict: `urgent` is True exactly when `level` is "urgent", and then `basis` says why."""

    urgent: bool
    level: Level
    categories: tuple[Category, ...]
    reasons: tuple[str, ...]
    basis: Basis | None = None
    scores: dict[str, float] = field(default_factory=dict)


def check_message(text: object) -> str:
    """The text itself, or a clear InvalidMessage saying what is wrong with it."""
    if not isinstance(text, str):
        raise InvalidMessage(f"the message must be text, not {type(text).__name__}")
    if not text.strip():
        raise InvalidMessage("the message is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidMessage(f"the message is too long ({len(text):,} characters; the limit is {MAX_MESSAGE_CHARS:,})")
    return text


def languages_in(folded: str) -> list[Language]:
    """Which languages' heads read this message: Chinese for Han characters, English for the rest.

    A Chinese message is read by the English heads too when English is a real part of it (at
    least three words, their letters at least a quarter of the Han characters), as in "我真的
    want to die". A long Chinese message with an app's name or "PHQ-9" in it is not: MiniLM
    reads Han characters one token each, which cost up to a second for nothing.
    """
    han = len(_CJK.findall(folded))
    latin_words = _LATIN_WORD.findall(folded)
    english = not han or (len(latin_words) >= 3 and 4 * sum(map(len, latin_words)) >= han)
    return [language for language, wanted in (("en", english), ("zh", han > 0)) if wanted]


_CONTEXT_NOTE = {
    "negated": "is negated ({cue!r})",
    "past": "is described as past ({cue!r})",
    "fiction": "refers to fiction or media ({cue!r})",
    "professional": "is framed as a professional or study question ({cue!r})",
    "joking": "reads as a joke ({cue!r})",
}


def _describe(match: Match) -> str:
    label = match.category.replace("_", " ")
    if match.context == "present":
        kind = {"intent": "states", "thought": "voices", "signal": "mentions"}[match.strength]
        return f"{kind} {match.phrase!r} ({label})"
    return f"{match.phrase!r} ({label}) " + _CONTEXT_NOTE[match.context].format(cue=match.cue)


class Screener:
    """The learned scorer of each language; the rules need no state."""

    def __init__(self, scorers: dict[Language, Scorer]) -> None:
        self.scorers = scorers

    @classmethod
    def load(cls, folder: Path) -> "Screener":
        # The heads bring scikit-learn (seconds to import): commands that only name a verdict or the
        # manifest (the console's, the registry's) import this module and never load heads.
        from components.screening.linear_heads import LinearHeads

        if not (folder / MANIFEST_FILE).is_file():
            raise PsyllmError(f"no trained screener in {folder}/; run `psyllm train-screener`")
        return cls({language: LinearHeads.load(folder, language) for language in LANGUAGES})

    def screen(self, text: object) -> Screening:
        return self.screen_many([text])[0]

    def screen_many(self, texts: list[object]) -> list[Screening]:
        """Screen a batch; each language's features are computed once for the whole batch."""
        folded = [fold(check_message(text)) for text in texts]
        wanted = [languages_in(message) for message in folded]
        probabilities: dict[Language, dict[int, np.ndarray]] = {}
        for language in LANGUAGES:
            indices = [index for index, languages in enumerate(wanted) if language in languages]
            if indices:
                rows = message_probabilities(self.scorers[language], [folded[index] for index in indices])
                probabilities[language] = dict(zip(indices, rows, strict=True))
        return [
            self._verdict(folded[index], {lang: rows[index] for lang, rows in probabilities.items() if index in rows})
            for index in range(len(folded))
        ]

    def _verdict(self, folded: str, rows: dict[Language, np.ndarray]) -> Screening:
        matches = find_matches(folded)
        verdict = rule_verdict(matches)
        reasons = [_describe(match) for match in matches if match.strength != "signal" or match.context == "present"]
        urgent_hits = risk_hits = False
        category_scores: dict[Category, float] = {}
        scores: dict[str, float] = {}
        for language, row in rows.items():
            by_head = dict(zip(HEADS, row.tolist(), strict=True))
            thresholds = self.scorers[language].thresholds
            scores[language] = round(by_head["urgent"], 4)
            if by_head["urgent"] >= thresholds.urgent:
                urgent_hits = True
                reasons.append(
                    f"the {language} classifier rates urgent risk {by_head['urgent']:.2f} "
                    f"(threshold {thresholds.urgent:.2f})"
                )
            risk_hits = risk_hits or by_head["risk"] >= thresholds.risk
            for category in CATEGORIES:
                category_scores[category] = max(category_scores.get(category, 0.0), by_head[category])
        level = decide_level(verdict, urgent_hits, risk_hits)
        if verdict.past_only and urgent_hits:
            reasons.append("every statement of intent or thought is in the past, so this is elevated, not urgent")
        if not reasons:
            reasons.append("no crisis language and no risk signal found")
        return Screening(
            urgent=level == "urgent",
            level=level,
            categories=categories_for(level, matches, category_scores),
            reasons=tuple(dict.fromkeys(reasons)),
            basis=("statement" if verdict.urgent else "classifier") if level == "urgent" else None,
            scores=scores,
        )
