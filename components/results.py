"""The evaluation steps' `metrics.json`, read back once into typed objects.

`evaluate` and `evaluate-screener` write plain JSON (DVC tracks it as metrics, people read it).
Whatever reads it back (registration, the gate, the model card, the CLI's summaries) reads it
here, so a renamed key fails in one place with a clear message, never as a KeyError deep inside.
"""

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from components.errors import PsyllmError

METRICS_FILE = "metrics.json"  # what both evaluation steps write
SCORES = ("perplexity", "bits_per_character", "rouge_l", "distinct_1", "distinct_2")  # what the registry keeps
ScreeningSplit = Literal["written", "real"]


class _Read(BaseModel):
    """Reads only the fields named here; the files hold more, for people and for DVC."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ModelScores(_Read):
    """One model on one scope of the test split (a language, or overall)."""

    perplexity: float
    bits_per_character: float
    rouge_l: float
    distinct_1: float
    distinct_2: float
    mean_answer_length: float
    questions: int

    def kept(self) -> dict[str, float]:
        """The scores the registry keeps on a version and the gate compares."""
        return {key: getattr(self, key) for key in SCORES}


class BenchmarkResults(_Read):
    """Which real benchmark the `evaluate` step scored, and how much of it."""

    version: str
    questions_per_source: int | None  # None: every question
    missing_sources: list[str]
    skipped: str | None = None  # why nothing was scored (no source present)

    def tags(self) -> dict[str, str]:
        """What a registered version records about the benchmark it was scored on."""
        scored = "none" if self.skipped else "all" if self.questions_per_source is None else self.questions_per_source
        return {
            "psyllm.benchmark_version": self.version,
            "psyllm.benchmark_questions_per_source": str(scored),
            "psyllm.benchmark_missing_sources": ",".join(self.missing_sources) or "none",
        }


class ModelEvaluationResults(_Read):
    """The `evaluate` step's metrics: each model variant (base, fine-tuned) by scope, and the benchmark."""

    variants: dict[str, dict[str, ModelScores]]
    benchmark: BenchmarkResults

    def overall(self, variant: str) -> ModelScores:
        if variant not in self.variants:
            raise PsyllmError(
                f"the evaluation has no variant {variant!r} (it has {', '.join(self.variants)}); "
                "rerun `psyllm evaluate`"
            )
        return self.variants[variant]["overall"]


class Rate(_Read):
    """A proportion with its Wilson 95 % interval; `value` is None when nothing was counted."""

    value: float | None
    ci95: tuple[float, float]
    successes: int
    trials: int


class UrgentScores(_Read):
    """Urgent recall and precision on one language of one frozen test split."""

    urgent_recall: Rate
    urgent_precision: Rate


class SourceFlagRate(_Read):
    """How often the screener flags one real source's messages urgent, against how often readers did."""

    messages: int
    flagged_urgent: Rate
    labelled_urgent: Rate
    flag_ratio: float | None


class ScreenerEvaluationResults(_Read):
    """The `evaluate-screener` step's metrics: each frozen test split by language, and each real source."""

    test_split: dict[str, UrgentScores]
    real_test_split: dict[str, UrgentScores | str]  # {"skipped": why} without the shared data
    sources: dict[str, SourceFlagRate | str]  # likewise

    def split(self, name: ScreeningSplit) -> dict[str, UrgentScores]:
        """One frozen test split by language; empty when it was skipped."""
        measured = self.test_split if name == "written" else self.real_test_split
        return {language: scores for language, scores in measured.items() if isinstance(scores, UrgentScores)}

    def skipped(self, name: ScreeningSplit) -> str | None:
        """Why a split was not measured, or None."""
        reason = (self.test_split if name == "written" else self.real_test_split).get("skipped")
        return reason if isinstance(reason, str) else None

    def source_rates(self) -> dict[str, SourceFlagRate]:
        return {source: rate for source, rate in self.sources.items() if isinstance(rate, SourceFlagRate)}


Results = TypeVar("Results", bound=_Read)


def _read(model: type[Results], path: Path, produced_by: str) -> Results:
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as missing:
        raise PsyllmError(f"{path}: missing; run `psyllm {produced_by}` (or `psyllm run`) first") from missing
    except ValidationError as bad:
        raise PsyllmError(
            f"{path}: not what `psyllm {produced_by}` writes ({bad.errors()[0]['msg']}); rerun it"
        ) from bad


def read_model_evaluation(folder: Path) -> ModelEvaluationResults:
    return _read(ModelEvaluationResults, folder / METRICS_FILE, "evaluate")


def read_screener_evaluation(folder: Path) -> ScreenerEvaluationResults:
    return _read(ScreenerEvaluationResults, folder / METRICS_FILE, "evaluate-screener")
