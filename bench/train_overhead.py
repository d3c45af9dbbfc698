"""What the pipeline's training costs over the loop a user would write: tokens/s, step against raw loop.

The candidate is the step itself: `pretrain.run` and `finetune.run` (the `base` start), as `psyllm
pretrain` and `psyllm finetune` run them, with `--warmup + --steps` optimiser steps, writing to a
scratch folder. Its throughput comes from the step's own records (`train_seconds`: gradients,
clipping and the optimiser), after the warm-up steps. The baseline is a minimal raw PyTorch loop
on the same model and adapter, the same batches in the same order (micro-batch and accumulation),
the same dtype and torch threads: Hugging Face's own loss, backward, AdamW. Tokens are the
labelled (trained-on) tokens of each step, the same on both sides. `overhead` = raw tokens/s /
pipeline tokens/s (above 1: the pipeline is slower). Where the step holds its frozen weights in
bf16 (LoRA on a CPU with bf16 units), the raw loop runs twice: in that dtype for `overhead`, and
in fp32, as `from_pretrained` loads a model, for `speedup_over_fp32` = pipeline / raw fp32.
Results go to bench/results/train_overhead.json.

Run it in a project whose prepare step has run (after `make run`, or `psyllm run --profile smoke`):

    .venv/bin/python bench/train_overhead.py [--profile default] [--steps 6] [--warmup 2]
"""

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from components.config import Paths, Profile, TrainingConfig, load_params
from components.hardware import machine
from components.modelling import finetune, pretrain
from components.modelling.adapters import apply_adapter, frozen_dtype
from components.modelling.base_model import load_model, step_base, use_cpu_threads
from components.modelling.loss import IGNORE_INDEX
from components.modelling.train_loop import Example, collate, example_indices

ROOT = Path(__file__).resolve().parents[1]
# The step's examples, built with the tokenizer the raw loop loads with its model.
ExamplesFor = Callable[[PreTrainedTokenizerBase], list[Example]]


@dataclass(frozen=True)
class Throughput:
    """Labelled tokens per second over the timed steps (the warm-up left out)."""

    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


@dataclass(frozen=True)
class Comparison:
    step: str
    frozen_dtype: str
    pipeline_tokens_per_second: float
    raw_tokens_per_second: float
    overhead: float
    raw_fp32_tokens_per_second: float
    speedup_over_fp32: float
    timed_steps: int


def steady(history: list[dict[str, float]], warmup: int) -> Throughput:
    """The step's own records after the warm-up."""
    timed = history[warmup:]
    return Throughput(int(sum(record["tokens"] for record in timed)), sum(record["train_seconds"] for record in timed))


def raw_loop(
    source: str, examples_for: ExamplesFor, training: TrainingConfig, steps: int, warmup: int, dtype: torch.dtype
) -> Throughput:
    """The loop a user would write by hand, on the batches the pipeline's loop reads, the model in `dtype`."""
    model, tokenizer = load_model(source, dtype)
    examples = examples_for(tokenizer)
    trainable = apply_adapter(model, training.adapter, "bench")
    trainable.train()
    optimizer = torch.optim.AdamW([p for p in trainable.parameters() if p.requires_grad], lr=training.learning_rate)
    cpu = torch.device("cpu")
    tokens, seconds = 0, 0.0
    for step in range(warmup + steps):
        batches = [
            collate(
                [examples[i] for i in example_indices(step, micro, 0, 1, training, len(examples))],
                tokenizer.pad_token_id,
                training.block_size,
                cpu,
            )
            for micro in range(training.gradient_accumulation)
        ]
        started = time.perf_counter()
        for batch in batches:
            (trainable(**batch).loss / training.gradient_accumulation).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            seconds += time.perf_counter() - started
            tokens += sum(int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()) for batch in batches)
    return Throughput(tokens, seconds)


def compare(
    name: str,
    run_step: Callable[[], list[dict[str, float]]],
    source: str,
    examples_for: ExamplesFor,
    training: TrainingConfig,
    steps: int,
    warmup: int,
) -> Comparison:
    pipeline = steady(run_step(), warmup)
    dtype = frozen_dtype(training.adapter, torch.device("cpu"))
    raw = raw_loop(source, examples_for, training, steps, warmup, dtype)
    raw_fp32 = raw if dtype == torch.float32 else raw_loop(source, examples_for, training, steps, warmup, torch.float32)
    return Comparison(
        name,
        str(dtype).removeprefix("torch."),
        round(pipeline.tokens_per_second, 1),
        round(raw.tokens_per_second, 1),
        round(raw.tokens_per_second / pipeline.tokens_per_second, 3),
        round(raw_fp32.tokens_per_second, 1),
        round(pipeline.tokens_per_second / raw_fp32.tokens_per_second, 3),
        steps,
    )


def shortened(profile: Profile, steps: int, warmup: int, start: str) -> Profile:
    """The profile with each step's training cut to the benchmark's steps, its checkpoints after them,
    fine-tuning the one `start` (`pretrained` makes the pretrain step train)."""
    total = warmup + steps
    short = {"max_steps": total, "checkpoint_every": total}
    return profile.model_copy(
        update={
            "pretrain": profile.pretrain.model_copy(
                update={"training": profile.pretrain.training.model_copy(update=short)}
            ),
            "finetune": profile.finetune.model_copy(
                update={"starts": [start], "training": profile.finetune.training.model_copy(update=short)}
            ),
        }
    )


def pretrain_history(profile: Profile, paths: Paths) -> list[dict[str, float]]:
    result = pretrain.run(profile, paths)
    assert result is not None, "the profile fine-tunes the pretrained start, so pretrain trains"
    return result.training.history


def measure(profile: Profile, paths: Paths, scratch: Path, steps: int, warmup: int) -> list[Comparison]:
    """Pretrain, then fine-tune, each against its raw loop, writing only under `scratch`."""
    pretraining, profile = shortened(profile, steps, warmup, "pretrained"), shortened(profile, steps, warmup, "base")
    paths = paths.model_copy(
        update={
            "pretrained": scratch / "pretrained",
            "finetuned": scratch / "finetuned",
            "checkpoints": scratch / "checkpoints",
        }
    )
    use_cpu_threads(profile.model)
    source = step_base(profile.model, paths.cache, paths.corpus, paths.qa)
    return [
        compare(
            "pretrain",
            lambda: pretrain_history(pretraining, paths),
            source,
            lambda tokenizer: pretrain.training_blocks(profile.pretrain, paths, tokenizer),
            profile.pretrain.training,
            steps,
            warmup,
        ),
        compare(
            "finetune",
            lambda: finetune.run(profile, paths)["base"].training.history,
            source,
            lambda tokenizer: finetune.training_examples(
                finetune.encoded_split(paths.qa, "train", tokenizer, profile.finetune), profile.finetune
            ),
            profile.finetune.training,
            steps,
            warmup,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="a profile in params.yaml (default: the active one)")
    parser.add_argument("--steps", type=int, default=6, help="timed optimiser steps per loop")
    parser.add_argument("--warmup", type=int, default=2, help="untimed optimiser steps first")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/train_overhead.json")
    args = parser.parse_args()
    params = load_params()
    name = args.profile or params.profile
    params.check_profile_name(name)
    profile = params.profiles[name]
    with tempfile.TemporaryDirectory(prefix="psyllm-train-bench-") as scratch:
        results = measure(profile, params.paths, Path(scratch), args.steps, args.warmup)
    report = {
        "profile": name,
        "base": profile.model.base,
        "adapter": profile.pretrain.training.adapter.method,
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "warmup_steps": args.warmup,
        "results": [asdict(result) for result in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        "| step | frozen weights | pipeline tokens/s | raw loop tokens/s | overhead (raw / pipeline) "
        "| raw loop in fp32 | speedup over fp32 |\n|---|---|---|---|---|---|---|"
    )
    for result in results:
        print(
            f"| {result.step} | {result.frozen_dtype} | {result.pipeline_tokens_per_second} "
            f"| {result.raw_tokens_per_second} | {result.overhead} | {result.raw_fp32_tokens_per_second} "
            f"| {result.speedup_over_fp32} |"
        )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
