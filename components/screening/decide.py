"""Where pattern matches and head probabilities become a level: the one decision rule.

Each language's learned heads (`linear_heads.LinearHeads`) give a probability per head:
`urgent` (P(urgent) from one softmax over the three levels), `risk` (1 - P(none) from the
same softmax) and one per category. The trainer tunes each language's thresholds through
these same functions, so what was measured is what runs.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from safetensors import safe_open

from components.errors import PsyllmError
from components.screening.labelled import CATEGORIES, LEVELS, Category, Level
from components.screening.rules import Match
from components.screening.units import Units, highest_per_message

HEADS: tuple[str, ...] = ("urgent", "risk", *CATEGORIES)
# What each row of a scorer's weights computes: the level softmax's logits, then each category's.
WEIGHT_ROWS: tuple[str, ...] = (*(f"level_{level}" for level in LEVELS), *CATEGORIES)


@dataclass(frozen=True)
class Thresholds:
    """Probability cut-offs for one language, chosen on held-out training scores."""

    urgent: float
    risk: float

    def as_metadata(self) -> dict[str, str]:
        """For the safetensors header of the scorer that owns them."""
        return {
            "weight_rows": ",".join(WEIGHT_ROWS),
            "urgent_threshold": repr(self.urgent),
            "risk_threshold": repr(self.risk),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> "Thresholds":
        return cls(float(metadata["urgent_threshold"]), float(metadata["risk_threshold"]))


def artefact_metadata(path: Path, framework: Literal["numpy", "pt"]) -> dict[str, str]:
    """A scorer file's header, after checking it exists and its weights have these rows."""
    if not path.is_file():
        raise PsyllmError(f"{path}: screener weights not found; run `psyllm train-screener`")
    with safe_open(str(path), framework=framework) as handle:
        metadata = handle.metadata() or {}
    if metadata.get("weight_rows") != ",".join(WEIGHT_ROWS):
        raise PsyllmError(f"{path}: written by an older version of the screener; run `psyllm train-screener` again")
    return metadata


class Scorer(Protocol):
    """A language's learned part: head probabilities for each unit of folded messages, and its thresholds."""

    thresholds: Thresholds

    def probabilities_for(self, units: Units) -> np.ndarray: ...


@dataclass(frozen=True)
class RuleVerdict:
    """What the patterns alone say: urgent (present intent), at least elevated (a present thought),
    held back to elevated (every intent or thought is past), or open."""

    urgent: bool
    thought: bool
    past_only: bool


def rule_verdict(matches: list[Match]) -> RuleVerdict:
    risky = [match for match in matches if match.strength in ("intent", "thought")]
    return RuleVerdict(
        urgent=any(match.strength == "intent" and match.context == "present" for match in risky),
        thought=any(match.strength == "thought" and match.context == "present" for match in risky),
        past_only=bool(risky) and all(match.context == "past" for match in risky),
    )


def decide_level(verdict: RuleVerdict, urgent_hits: bool, risk_hits: bool) -> Level:
    """Urgent if an intent pattern is present, or a head fires and the risk is not all in the past."""
    if verdict.urgent or (urgent_hits and not verdict.past_only):
        return "urgent"
    if urgent_hits or risk_hits or verdict.thought or verdict.past_only:
        return "elevated"
    return "none"


def urgent_decisions(verdicts: list[RuleVerdict], urgent_scores: np.ndarray, threshold: float) -> np.ndarray:
    """The urgent flag `decide_level` gives at this threshold, for every message."""
    return np.array(
        [
            decide_level(verdict, urgent_hits=score >= threshold, risk_hits=False) == "urgent"
            for verdict, score in zip(verdicts, urgent_scores.tolist(), strict=True)
        ]
    )


def message_probabilities(scorer: "Scorer", folded_texts: list[str]) -> np.ndarray:
    """(messages, HEADS): each head's highest probability over a message's units (whole, then windows)."""
    units = Units.of(folded_texts)
    return highest_per_message(scorer.probabilities_for(units), units.owner, len(folded_texts))


def categories_for(level: Level, matches: list[Match], category_scores: dict[Category, float]) -> tuple[Category, ...]:
    """Categories named by in-context matches, plus any category head at >= 0.5, else the top head."""
    if level == "none":
        return ()
    wanted = {"urgent": {"present"}, "elevated": {"present", "past", "negated"}}[level]
    chosen = {match.category for match in matches if match.context in wanted}
    chosen |= {category for category, score in category_scores.items() if score >= 0.5}
    if not chosen and category_scores:
        chosen = {max(category_scores, key=category_scores.__getitem__)}
    return tuple(category for category in CATEGORIES if category in chosen)
