"""`psyllm finetune`: supervised fine-tuning on the Q&A train split, loss on answers only.

Each entry of `finetune.starts` is one model: `pretrained` continues from the pretrain
step's output (the paper's recipe) and `base` from the untouched base model (the control
that shows what domain pretraining adds). Validation loss is measured every `eval_every`
steps and training stops after `patience` evaluations without improvement, keeping the best
weights. Each artefact in `paths.finetuned/<start>/` holds the merged model, its tokenizer,
the prompt template it was trained with and the decoding settings it is evaluated and served
with, so serving cannot drift from training or from what was measured.
"""

from pathlib import Path

from torch import nn
from transformers import PreTrainedTokenizerBase

from components.config import FinetuneConfig, GenerationConfig, Paths, Profile
from components.errors import PsyllmError
from components.modelling.adapters import apply_adapter, frozen_dtype, merged
from components.modelling.base_model import context_length, load_model, save_model, step_base, use_cpu_threads
from components.modelling.data import QAExamples, balanced_by_language, qa_examples
from components.modelling.prompt import PromptTemplate
from components.modelling.stored_generation import save_generation
from components.modelling.train_loop import Example, mean_loss, placement, train
from components.modelling.trained import (
    TRAINING_FILE,
    StepResult,
    check_block_size,
    fingerprint,
    write_training_record,
)
from components.qa_data import load_qa


def prompt_template(config: FinetuneConfig) -> PromptTemplate:
    """The template the step trains with; it is saved beside the model, so serving prompts alike."""
    return PromptTemplate(max_description_tokens=config.max_description_tokens)


def encoded_split(qa_dir: Path, split: str, tokenizer: PreTrainedTokenizerBase, config: FinetuneConfig) -> QAExamples:
    """One Q&A split's distinct encoded pairs, or a clear error when nothing fits."""
    encoded = qa_examples(
        load_qa(qa_dir / f"{split}.jsonl"),
        tokenizer,
        prompt_template(config),
        config.training.block_size,
        config.min_answer_tokens,
    )
    if not encoded.examples:
        raise PsyllmError(f"{qa_dir / split}.jsonl: no usable Q&A pairs (dropped {encoded.dropped} as too long)")
    return encoded


def training_examples(train_split: QAExamples, config: FinetuneConfig) -> list[Example]:
    """What the loop trains on: with `balance_languages`, the languages evened out by repeats.

    Only the train split is balanced; validation stays as drawn, so its loss keeps meaning the
    same thing from run to run. Records count the distinct pairs, not the repeats.
    """
    if config.balance_languages:
        return balanced_by_language(train_split)
    return train_split.examples


def run_one(
    start: str,
    source: str,
    config: FinetuneConfig,
    generation: GenerationConfig,
    qa_dir: Path,
    checkpoints: Path,
    out: Path,
) -> StepResult:
    """Fine-tune the model in `source` and write the artefact to `out`."""
    model, tokenizer = load_model(source, frozen_dtype(config.training.adapter, placement().device))
    training = config.training
    check_block_size(training, context_length(model), "finetune.training")
    train_split = encoded_split(qa_dir, "train", tokenizer, config)
    train_examples = training_examples(train_split, config)
    validation_examples = encoded_split(qa_dir, "validation", tokenizer, config).examples
    trainable = apply_adapter(model, training.adapter, "finetune.training.adapter")

    def validate(current: nn.Module) -> float:
        return mean_loss(current, validation_examples, training, tokenizer.pad_token_id)

    # A pretrained source is identified by its training record, so a new pretrain restarts fine-tuning.
    source_record = Path(source) / TRAINING_FILE
    lineage = source_record.read_text(encoding="utf-8") if source_record.is_file() else source
    digest = fingerprint(lineage, config.model_dump_json(), (qa_dir / "train.jsonl").read_bytes())
    result = train(
        trainable,
        train_examples,
        training,
        tokenizer.pad_token_id,
        checkpoints / start,
        digest,
        validate=validate,
        eval_every=config.eval_every,
        patience=config.patience,
    )
    if placement().writes:
        save_model(merged(trainable, source), tokenizer, out)
        prompt_template(config).save(out)
        save_generation(generation, out)
        write_training_record(out, source, result, len(train_split.examples))
    return StepResult(folder=out, base=source, training=result, examples=len(train_split.examples))


def run(profile: Profile, paths: Paths) -> dict[str, StepResult]:
    """Every start in `finetune.starts`, each into `paths.finetuned/<start>/`."""
    model_config, config, generation = profile.model, profile.finetune, profile.generation
    corpus, qa_dir, cache, pretrained, out = paths.corpus, paths.qa, paths.cache, paths.pretrained, paths.finetuned
    checkpoints = paths.checkpoints
    use_cpu_threads(model_config)
    results = {}
    for start in config.starts:
        if start == "pretrained":
            if not (pretrained / "config.json").is_file():
                raise PsyllmError(f"{pretrained}: no pretrained model; run `psyllm pretrain` first")
            source = str(pretrained)
        else:
            source = step_base(model_config, cache, corpus, qa_dir)
        results[start] = run_one(start, source, config, generation, qa_dir, checkpoints / "finetune", out / start)
    return results
