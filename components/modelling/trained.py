"""What the pretrain and fine-tune steps share: the checks before training, and the record beside a model.

Each trained model folder carries `training.json` (its base, steps, losses, early stop), so a
model can be traced to how it was trained without the tracking server.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from components.config import TrainingConfig
from components.errors import PsyllmError
from components.modelling.train_loop import TrainResult

TRAINING_FILE = "training.json"


@dataclass(frozen=True)
class StepResult:
    """Where the trained model went and what training did."""

    folder: Path
    base: str
    training: TrainResult
    examples: int


def check_block_size(training: TrainingConfig, context: int, field: str) -> None:
    """A block longer than the model's positions would fail deep inside attention; say so up front."""
    if training.block_size > context:
        raise PsyllmError(
            f"{field}.block_size: {training.block_size} is over the model's context of {context} tokens; "
            f"allowed: 1 to {context}"
        )


def fingerprint(*parts: object) -> str:
    """Identifies a training run's inputs, so checkpoints from other settings are never resumed."""
    return hashlib.sha256(json.dumps([str(part) for part in parts]).encode()).hexdigest()


def write_training_record(folder: Path, base: str, result: TrainResult, examples: int) -> None:
    record = {
        "base": base,
        "examples": examples,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "stopped_early": result.stopped_early,
        "best_validation_loss": result.best_validation_loss,
        "history": result.history,
    }
    (folder / TRAINING_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
