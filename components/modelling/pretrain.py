"""`psyllm pretrain`: continued causal-LM pretraining of the base model on the prepared corpus.

The paper's first mechanism: before seeing any Q&A, the model reads psychology articles.
Checkpoints go to `paths.checkpoints/pretrain`, outside DVC's outputs, so a killed run
resumes there; the finished model (LoRA merged) is written to `paths.pretrained`. A profile
whose fine-tune starts all begin from the base model needs no pretrained model: the step then
writes only `NOT_TRAINED_FILE`, saying why, so the step graph stays whole and costs nothing.
"""

import json

from transformers import PreTrainedTokenizerBase

from components.config import Paths, PretrainConfig, Profile
from components.errors import PsyllmError
from components.lineage import file_digest
from components.modelling.adapters import apply_adapter, frozen_dtype, merged
from components.modelling.base_model import context_length, load_model, save_model, step_base, use_cpu_threads
from components.modelling.data import corpus_blocks
from components.modelling.train_loop import Example, placement, train
from components.modelling.trained import StepResult, check_block_size, fingerprint, write_training_record
from components.staging import staged_folder

NOT_TRAINED_FILE = "not_trained.json"


def training_blocks(config: PretrainConfig, paths: Paths, tokenizer: PreTrainedTokenizerBase) -> list[Example]:
    """The corpus as the step trains on it: packed blocks, or a clear error when there are none."""
    blocks = corpus_blocks(
        paths.corpus,
        tokenizer,
        config.training.block_size,
        config.max_documents,
        config.training.seed,
        paths.cache / "datasets",
    )
    if not blocks:
        raise PsyllmError(f"{paths.corpus}: the corpus is empty; run `psyllm prepare` first")
    return blocks


def run(profile: Profile, paths: Paths) -> StepResult | None:
    """Pretrain the profile's base model on the prepared corpus into paths.pretrained.

    None, having trained nothing, when no fine-tune start reads the pretrained model.
    """
    if not profile.pretrain_needed:
        with staged_folder(paths.pretrained) as staging:
            reason = f"no fine-tune start reads a pretrained model (finetune.starts: {profile.finetune.starts})"
            (staging / NOT_TRAINED_FILE).write_text(json.dumps({"reason": reason}) + "\n", encoding="utf-8")
        return None
    model_config, config = profile.model, profile.pretrain
    corpus, qa_dir, cache, checkpoints, out = paths.corpus, paths.qa, paths.cache, paths.checkpoints, paths.pretrained
    use_cpu_threads(model_config)
    base = step_base(model_config, cache, corpus, qa_dir)
    model, tokenizer = load_model(base, frozen_dtype(config.training.adapter, placement().device))
    check_block_size(config.training, context_length(model), "pretrain.training")
    blocks = training_blocks(config, paths, tokenizer)
    trainable = apply_adapter(model, config.training.adapter, "pretrain.training.adapter")
    corpus_digest = file_digest(corpus)
    result = train(
        trainable,
        blocks,
        config.training,
        tokenizer.pad_token_id,
        checkpoints / "pretrain",
        fingerprint(base, config.model_dump_json(), corpus_digest),
    )
    if placement().writes:
        save_model(merged(trainable, base), tokenizer, out)
        write_training_record(out, base, result, len(blocks))
    return StepResult(folder=out, base=base, training=result, examples=len(blocks))
