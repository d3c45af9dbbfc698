"""The one training loop, shared by pretrain and finetune: short enough to read top to bottom.

Each optimiser step accumulates `gradient_accumulation` micro-batches, normalises the loss by
the tokens in the whole step (so long and short examples weigh by token), clips, and steps
AdamW under linear warm-up and cosine decay. The batch order is a pure function of the seed
and the step, and a checkpoint holds the trainable weights, the optimiser and the RNG, so a
killed run resumes to the same state as one that was never interrupted. A non-finite loss
stops before the weights change, leaving the last good checkpoint in place. Each step's record
holds its `train_seconds` (gradients, clipping and the optimiser; not validation or checkpoints),
so throughput is measured where the work happens (bench/train_overhead.py).

Multi-process: run the same command under `torchrun` or `accelerate launch`; they set
WORLD_SIZE/RANK, the loss module is wrapped in DDP (NCCL on GPUs, gloo on CPUs), each rank
reads its own share of every step, and only rank 0 writes.
"""

import functools
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import distributed, nn
from torch.nn.parallel import DistributedDataParallel

from components.config import TrainingConfig
from components.errors import PsyllmError
from components.modelling.adapters import trainable_parameters
from components.modelling.loss import IGNORE_INDEX, CausalLMLoss
from components.progress import Progress
from components.staging import staged_folder

Example = dict[str, list[int]]
LATEST = "latest"
BEST = "best.safetensors"
PADDED_WIDTH_MULTIPLE = 64


@dataclass
class TrainResult:
    """What happened: the steps taken, the history of logged values, and why it stopped."""

    steps: int
    resumed_from: int
    stopped_early: bool
    best_validation_loss: float | None
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Placement:
    """Where this process trains: its rank among `world` processes and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def writes(self) -> bool:
        return self.rank == 0


def placement() -> Placement:
    """Join the process group when launched by torchrun/accelerate; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if world > 1 and not distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Placement(rank=int(os.environ.get("RANK", "0")), world=world, device=device)


def learning_rate_at(step: int, config: TrainingConfig) -> float:
    """Linear warm-up to `learning_rate`, then cosine decay to `min_learning_rate` at `max_steps`."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.min_learning_rate + cosine * (config.learning_rate - config.min_learning_rate)


def example_indices(step: int, micro: int, rank: int, world: int, config: TrainingConfig, count: int) -> list[int]:
    """The examples one rank reads at one micro-batch: a seeded shuffle per epoch, no state kept."""
    per_step = config.micro_batch_size * config.gradient_accumulation * world
    first = step * per_step + (micro * world + rank) * config.micro_batch_size
    indices = []
    for position in range(first, first + config.micro_batch_size):
        epoch, offset = divmod(position, count)
        indices.append(_epoch_order(config.seed, epoch, count)[offset])
    return indices


@functools.lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, count: int) -> tuple[int, ...]:
    """One epoch's shuffle, drawn once and reused by every micro-batch of that epoch."""
    return tuple(torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist())


def padded_width(longest: int, block_size: int) -> int:
    """A batch's width: its longest example rounded up to a multiple of 64, at most the block size.

    A CPU builds a bf16 matrix-product kernel per shape (oneDNN), and with a width per sequence
    length a long run slowed as the shapes piled up: the same 10 fine-tuning steps took 19.4 s in
    a fresh process and 23.5 s after 58 others. In steps of 64 they took 19.8 s and 18.9 s, and the
    58 steps between 14 % less time, padding included.
    """
    return max(longest, min(-(-longest // PADDED_WIDTH_MULTIPLE) * PADDED_WIDTH_MULTIPLE, block_size))


def collate(examples: Sequence[Example], pad_id: int, block_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-padded input ids, labels (IGNORE_INDEX on padding) and the attention mask, `padded_width` wide."""
    width = padded_width(max(len(example["input_ids"]) for example in examples), block_size)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        length = len(example["input_ids"])
        input_ids[row, :length] = torch.tensor(example["input_ids"])
        labels[row, :length] = torch.tensor(example["labels"])
        attention_mask[row, :length] = 1
    return {"input_ids": input_ids.to(device), "labels": labels.to(device), "attention_mask": attention_mask.to(device)}


def autocast(device: torch.device) -> torch.autocast | nullcontext:
    """bf16 autocast on GPUs that support it; none on CPUs, where autocast casts every frozen weight
    again at every call (slower than fp32): there the frozen weights are loaded in bf16 instead."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@dataclass
class TrainState:
    """What a checkpoint records besides the weights, optimiser and RNG: enough to resume exactly."""

    fingerprint: str  # the run's inputs: a checkpoint of other settings is never resumed
    step: int = 0
    best_validation_loss: float | None = None
    evaluations_without_gain: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def out_of_patience(self, patience: int) -> bool:
        """Whether validation has stopped the run (`patience` 0: no validation, never)."""
        return patience > 0 and self.evaluations_without_gain >= patience


def _save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
    """Write `folder/latest` atomically: a kill mid-write leaves the previous checkpoint intact."""
    with staged_folder(folder / LATEST) as staging:
        save_file(
            {name: p.detach().cpu().contiguous() for name, p in trainable_parameters(model).items()},
            staging / "trainable.safetensors",
        )
        torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, staging / "optimizer.pt")
        (staging / "state.json").write_text(json.dumps(asdict(state)), encoding="utf-8")


def _load_checkpoint(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, fingerprint: str
) -> TrainState | None:
    """Restore `folder/latest` if it was written by a run with the same fingerprint."""
    latest = folder / LATEST
    if not (latest / "state.json").is_file():
        return None
    state = TrainState(**json.loads((latest / "state.json").read_text(encoding="utf-8")))
    if state.fingerprint != fingerprint:
        return None
    weights = load_file(latest / "trainable.safetensors")
    parameters = trainable_parameters(model)
    with torch.no_grad():
        for name, value in weights.items():
            parameters[name].copy_(value)
    bundle = torch.load(latest / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(bundle["optimizer"])
    torch.set_rng_state(bundle["rng"])
    return state


def _global_sum(value: torch.Tensor, where: Placement) -> torch.Tensor:
    if where.world > 1:
        distributed.all_reduce(value)
    return value


@torch.no_grad()
def mean_loss(model: nn.Module, examples: Sequence[Example], config: TrainingConfig, pad_id: int) -> float:
    """Token-weighted mean NLL over `examples` (validation loss), with dropout off."""
    where = placement()
    loss_module = CausalLMLoss(model, config.loss_chunk_size)
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64)
    for start in range(0, len(examples), config.micro_batch_size):
        batch = collate(examples[start : start + config.micro_batch_size], pad_id, config.block_size, where.device)
        with autocast(where.device):
            nll, tokens = loss_module(**batch)
        totals += torch.tensor([float(nll), float(tokens)], dtype=torch.float64)
    model.train(was_training)
    return float(totals[0] / totals[1])


def _optimizer(parameters: dict[str, nn.Parameter], config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms and biases)."""
    decay = [p for p in parameters.values() if p.dim() >= 2]
    no_decay = [p for p in parameters.values() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )


def _resume(
    checkpoints: Path, model: nn.Module, optimizer: torch.optim.Optimizer, fingerprint: str, where: Placement
) -> tuple[TrainState, dict[str, torch.Tensor] | None]:
    """The state to continue from and the best weights so far: a checkpoint's, or a fresh start."""
    state = _load_checkpoint(checkpoints, model, optimizer, fingerprint)
    if state is None:  # nothing to resume, or another run's checkpoints: start afresh
        if where.writes:
            shutil.rmtree(checkpoints, ignore_errors=True)
        return TrainState(fingerprint), None
    best_file = checkpoints / BEST
    return state, load_file(best_file) if best_file.is_file() else None


def _gradients(
    step: int,
    loss_module: nn.Module,
    examples: Sequence[Example],
    config: TrainingConfig,
    pad_id: int,
    where: Placement,
) -> tuple[float, float]:
    """Accumulate one step's gradients over its micro-batches; returns its loss per token and its tokens."""
    batches = [
        collate(
            [examples[i] for i in example_indices(step, micro, where.rank, where.world, config, len(examples))],
            pad_id,
            config.block_size,
            where.device,
        )
        for micro in range(config.gradient_accumulation)
    ]
    step_tokens = _global_sum(sum((b["labels"][:, 1:] != IGNORE_INDEX).sum() for b in batches), where)
    step_nll = torch.zeros((), device=where.device)
    for micro, batch in enumerate(batches):
        last = micro == len(batches) - 1
        sync = nullcontext() if last or where.world == 1 else loss_module.no_sync()
        with sync, autocast(where.device):
            nll, _ = loss_module(**batch)
            (nll * where.world / step_tokens.clamp(min=1)).backward()
        step_nll += nll.detach()
    return float(_global_sum(step_nll, where) / step_tokens.clamp(min=1)), float(step_tokens)


def _record_validation(
    state: TrainState, validation: float, parameters: dict[str, nn.Parameter]
) -> dict[str, torch.Tensor] | None:
    """Count an evaluation without gain, or make these the best weights (returned) on a new best."""
    if state.best_validation_loss is not None and validation >= state.best_validation_loss:
        state.evaluations_without_gain += 1
        return None
    state.best_validation_loss, state.evaluations_without_gain = validation, 0
    return {name: p.detach().cpu().clone() for name, p in parameters.items()}


def train(
    model: nn.Module,
    examples: Sequence[Example],
    config: TrainingConfig,
    pad_id: int,
    checkpoints: Path,
    fingerprint: str,
    validate: Callable[[nn.Module], float] | None = None,
    eval_every: int = 0,
    patience: int = 0,
) -> TrainResult:
    """Train `model` in place for `config.max_steps` optimiser steps (fewer if validation stops it).

    With `validate`, the validation loss is measured every `eval_every` steps; after `patience`
    evaluations without improvement training stops and the best weights are restored. A run that
    already stopped, or finished, resumes to the same result without another step.
    """
    where = placement()
    model.to(where.device).train()
    torch.manual_seed(config.seed)
    parameters = trainable_parameters(model)
    optimizer = _optimizer(parameters, config)
    state, best_weights = _resume(checkpoints, model, optimizer, fingerprint, where)
    patience = patience if validate is not None else 0
    resumed_from = last_saved = state.step
    loss_module = CausalLMLoss(model, config.loss_chunk_size)
    if where.world > 1:
        loss_module = DistributedDataParallel(loss_module)
    progress = Progress("training", config.max_steps, done=state.step, unit="step")
    while state.step < config.max_steps and not state.out_of_patience(patience):
        step = state.step
        learning_rate = learning_rate_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        started = time.perf_counter()
        loss, tokens = _gradients(step, loss_module, examples, config, pad_id, where)
        if not math.isfinite(loss):
            raise PsyllmError(
                f"training loss became {loss} at step {step + 1}; stopped before updating the weights. "
                + (f"The last good checkpoint (step {last_saved}) is in {checkpoints / LATEST}. " if last_saved else "")
                + "Lower the learning rate or check the data."
            )
        torch.nn.utils.clip_grad_norm_(list(parameters.values()), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        record = {
            "step": step + 1,
            "loss": loss,
            "learning_rate": learning_rate,
            "tokens": tokens,
            "train_seconds": time.perf_counter() - started,
        }
        if validate is not None and ((step + 1) % eval_every == 0 or step + 1 == config.max_steps):
            record["validation_loss"] = validation = validate(model)
            if (new_best := _record_validation(state, validation, parameters)) is not None:
                best_weights = new_best
                if where.writes:
                    checkpoints.mkdir(parents=True, exist_ok=True)
                    save_file(best_weights, checkpoints / BEST)
        state.history.append(record)
        state.step = step + 1
        if where.writes:
            progress.advance(tokens=int(tokens), loss=loss)
        if where.writes and (state.step % config.checkpoint_every == 0 or state.out_of_patience(patience)):
            _save_checkpoint(checkpoints, model, optimizer, state)
            last_saved = state.step
    if best_weights is not None:
        with torch.no_grad():
            for name, value in best_weights.items():
                parameters[name].copy_(value)
    model.eval()
    return TrainResult(
        steps=state.step,
        resumed_from=resumed_from,
        stopped_early=state.out_of_patience(patience),
        best_validation_loss=state.best_validation_loss,
        history=state.history,
    )
