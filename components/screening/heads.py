"""Linear heads over a language's features, and the rule that combines them with the patterns.

Each language has one weight row per head: `urgent` (urgent vs not), `risk` (urgent or
elevated vs none) and one per category. Weights and thresholds are the whole artefact,
stored as safetensors (no pickle, so loading a screener never runs code).
`decide` is the single place where pattern matches and head scores become a level; the
trainer tunes thresholds through the same function the screener uses.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from components.errors import PsyllmError
from components.screening.features import Features, Language
from components.screening.labelled import CATEGORIES, Category, Level
from components.screening.rules import Match

HEADS: tuple[str, ...] = ("urgent", "risk", *CATEGORIES)


@dataclass(frozen=True)
class Thresholds:
    """Probability cut-offs for one language, chosen on cross-validated training scores."""

    urgent: float
    risk: float


@dataclass(frozen=True)
class LanguageHeads:
    """Logistic-regression weights for every head of one language, and the IDF its features use."""

    language: Language
    weight: np.ndarray  # (len(HEADS), features)
    bias: np.ndarray  # (len(HEADS),)
    idf: np.ndarray  # (hash buckets,) for the n-gram features
    thresholds: Thresholds

    def probabilities(self, features: Features) -> np.ndarray:
        """(messages, heads) probabilities."""
        logits = features @ self.weight.T + self.bias
        return 1.0 / (1.0 + np.exp(-np.asarray(logits)))

    def save(self, path: Path) -> None:
        save_file(
            {
                "weight": self.weight.astype(np.float32),
                "bias": self.bias.astype(np.float32),
                "idf": self.idf.astype(np.float32),
            },
            str(path),
            metadata={
                "language": self.language,
                "heads": ",".join(HEADS),
                "urgent_threshold": repr(self.thresholds.urgent),
                "risk_threshold": repr(self.thresholds.risk),
            },
        )

    @classmethod
    def load(cls, path: Path) -> "LanguageHeads":
        from safetensors import safe_open

        if not path.is_file():
            raise PsyllmError(f"{path}: screener weights not found; run `psyllm train-screener`")
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata()
        if metadata.get("heads") != ",".join(HEADS):
            raise PsyllmError(
                f"{path}: trained for heads {metadata.get('heads')}; retrain with `psyllm train-screener`"
            )
        tensors = load_file(str(path))
        return cls(
            language=metadata["language"],  # type: ignore[arg-type]
            weight=tensors["weight"],
            bias=tensors["bias"],
            idf=tensors["idf"],
            thresholds=Thresholds(float(metadata["urgent_threshold"]), float(metadata["risk_threshold"])),
        )


@dataclass(frozen=True)
class RuleVerdict:
    """What the patterns alone say: urgent, held back to elevated (all intent is past), or open."""

    urgent: bool
    past_only: bool


def rule_verdict(matches: list[Match]) -> RuleVerdict:
    intents = [match for match in matches if match.strength == "intent"]
    present = any(match.context == "present" for match in intents)
    past_only = bool(intents) and all(match.context == "past" for match in intents)
    return RuleVerdict(urgent=present, past_only=past_only)


def decide_level(verdict: RuleVerdict, urgent_hits: bool, risk_hits: bool) -> Level:
    """Urgent if an intent pattern is present, or a head fires and the intent is not all in the past."""
    if verdict.urgent or (urgent_hits and not verdict.past_only):
        return "urgent"
    if urgent_hits or risk_hits or verdict.past_only:
        return "elevated"
    return "none"


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
