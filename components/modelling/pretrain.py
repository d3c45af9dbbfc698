"""`psyllm pretrain`: continued causal-LM pretraining of the base model on the prepared corpus.

The paper's first mechanism: before seeing any Q&A, the model reads psychology articles.
Checkpoints go to `paths.checkpoints/pretrain`, outside DVC's outputs, so a killed run
resumes there; the finished model (LoRA merged) is written to `paths.pretrained`.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from components.config import ModelConfig, PretrainConfig, TrainingConfig
from components.errors import PsyllmError
from components.modelling.adapters import apply_adapter, merged
from components.modelling.base_model import context_length, load_model, save_model, step_base, use_cpu_threads
from components.modelling.data import corpus_blocks
from components.modelling.train_loop import TrainResult, placement, train

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


def run(
    model_config: ModelConfig,
    config: PretrainConfig,
    corpus: Path,
    qa_dir: Path,
    cache: Path,
    checkpoints: Path,
    out: Path,
) -> StepResult:
    use_cpu_threads(model_config)
    base = step_base(model_config, cache, corpus, qa_dir)
    model, tokenizer = load_model(base)
    check_block_size(config.training, context_length(model), "pretrain.training")
    blocks = corpus_blocks(
        corpus, tokenizer, config.training.block_size, config.max_documents, config.training.seed, cache / "datasets"
    )
    if not blocks:
        raise PsyllmError(f"{corpus}: the corpus is empty; run `psyllm prepare` first")
    trainable = apply_adapter(model, config.training.adapter, "pretrain.training.adapter")
    corpus_digest = hashlib.sha256(corpus.read_bytes()).hexdigest()
    result = train(
        trainable,
        blocks,
        config.training,
        tokenizer.pad_token_id,
        checkpoints / "pretrain",
        fingerprint(base, config.model_dump_json(), corpus_digest),
    )
    if placement().writes:
        save_model(merged(trainable), tokenizer, out)
        write_training_record(out, base, result, len(blocks))
    return StepResult(folder=out, base=base, training=result, examples=len(blocks))
