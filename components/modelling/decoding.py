"""The KV-cached decoding step loop, with rows that join and leave between steps.

Rows are left-aligned on one KV cache, so every row's next token sits in the last column and
one forward pass decodes them all. A row joins by a prefill of its own prompt (with any others
joining at that moment), after which its cache is padded on the left to the batch's width and
stacked under the running rows; a row that ends leaves at once, and columns that hold only
padding are dropped. So the service decodes continuously (a request need not wait for a batch
to finish, and no row waits for the slowest one), and evaluation, whose rows all join at once,
runs the same loop. Each row keeps its own position ids, so padding changes no row's tokens.
A prefill computes the output layer for each row's last position only: every running row waits
for it, and over all prompt positions the 262k-way output layer made a 4-row prefill of 51-token
prompts 2.7 times as slow (309 against 114 ms, Gemma 3 270M in bf16 on 2 cores).

The cache holds every layer in full, sliding-window layers included: the attention mask applies
the window, and padding full layers is what lets rows of different lengths share one cache.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import torch
import torch.nn.functional as F
from transformers import (
    DynamicCache,
    LogitsProcessorList,
    PreTrainedModel,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

if TYPE_CHECKING:  # only the settings' fields are read, so bench/gpu_serve.py runs without pydantic
    from components.config import GenerationConfig

Key = TypeVar("Key", bound=Hashable)


@dataclass
class Step(Generic[Key]):
    """What one prefill or decoding step produced: each running row's new token, and the rows that ended."""

    emitted: list[tuple[Key, int]] = field(default_factory=list)
    finished: list[Key] = field(default_factory=list)


def _processors(settings: GenerationConfig) -> LogitsProcessorList:
    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.do_sample:
        processors.append(TemperatureLogitsWarper(settings.temperature))
        processors.append(TopPLogitsWarper(settings.top_p))
    return processors


def _pad_left(tensor: torch.Tensor, width: int, dim: int, value: int = 0) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    return F.pad(tensor, (0, 0) * (tensor.dim() - 1 - dim) + (missing, 0), value=value)


class DecodingBatch(Generic[Key]):
    """Rows decoding together; `add` and `step` say which rows emitted which token and which ended.

    A row ends after its `limit` tokens, at EOS (not emitted), or as soon as `stopped(key)` is
    true: the caller's way to end a row early (a cut answer, a client gone).
    """

    def __init__(
        self, model: PreTrainedModel, settings: GenerationConfig, pad_token_id: int, eos_token_id: int
    ) -> None:
        self.model, self.settings = model.eval(), settings
        self.pad_token_id, self.eos_token_id = pad_token_id, eos_token_id
        self.device = next(model.parameters()).device
        self.processors = _processors(settings)
        self._clear()

    def _clear(self) -> None:
        self.keys: list[Key] = []
        self.limits: list[int] = []
        self.produced: list[int] = []
        self.cache = DynamicCache()
        self.sequences = torch.empty((0, 0), dtype=torch.long, device=self.device)  # prompt + tokens fed, padded
        self.attention_mask = torch.empty((0, 0), dtype=torch.long, device=self.device)
        self.next_tokens = torch.empty(0, dtype=torch.long, device=self.device)  # chosen, not yet fed
        self.next_positions = torch.empty(0, dtype=torch.long, device=self.device)

    def __len__(self) -> int:
        return len(self.keys)

    @torch.no_grad()
    def add(
        self, keys: list[Key], prompts: list[list[int]], limits: list[int], stopped: Callable[[Key], bool]
    ) -> Step[Key]:
        """Prefill new rows and choose their first tokens; they decode with the others from the next step."""
        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        output = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
            use_cache=True, cache_position=torch.arange(width, device=self.device), logits_to_keep=1,
        )  # fmt: skip
        chosen = self._choose(input_ids, output.logits[:, -1, :])
        self._stack(cache, input_ids, attention_mask, position_ids[:, -1] + 1)
        self.keys += keys
        self.limits += limits
        self.produced += [0] * len(keys)
        self.next_tokens = torch.cat([self.next_tokens, chosen])
        return self._advance(range(len(self.keys) - len(keys), len(self.keys)), stopped)

    @torch.no_grad()
    def step(self, stopped: Callable[[Key], bool]) -> Step[Key]:
        """Feed every row its chosen token and choose the next one."""
        fed = self.next_tokens.unsqueeze(1)
        width = self.sequences.shape[1]
        self.sequences = torch.cat([self.sequences, fed], dim=1)
        self.attention_mask = torch.cat([self.attention_mask, self.attention_mask.new_ones((len(self), 1))], dim=1)
        output = self.model(
            input_ids=fed, attention_mask=self.attention_mask, position_ids=self.next_positions.unsqueeze(1),
            cache=self.cache, use_cache=True, cache_position=torch.arange(width, width + 1, device=self.device),
        )  # fmt: skip
        self.next_positions = self.next_positions + 1
        self.next_tokens = self._choose(self.sequences, output.logits[:, -1, :])
        return self._advance(range(len(self)), stopped)

    def _choose(self, sequences: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        scores = self.processors(sequences, logits.float())
        if self.settings.do_sample:
            return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        return scores.argmax(dim=-1)

    def _advance(self, rows: range, stopped: Callable[[Key], bool]) -> Step[Key]:
        """Emit the chosen tokens of `rows`, then drop every row that ended."""
        step: Step[Key] = Step()
        ended: set[int] = set()
        for row, token in zip(rows, self.next_tokens[rows.start : rows.stop].tolist(), strict=True):
            key = self.keys[row]
            if token == self.eos_token_id or stopped(key):
                ended.add(row)
                continue
            step.emitted.append((key, token))
            self.produced[row] += 1
            if self.produced[row] >= self.limits[row]:
                ended.add(row)
        if ended:
            step.finished = [self.keys[row] for row in sorted(ended)]
            self._keep([row for row in range(len(self)) if row not in ended])
        return step

    def _stack(self, cache: DynamicCache, sequences: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> None:
        """Put newly prefilled rows under the running ones, padding the narrower side on the left."""
        if not self.keys:
            self.cache, self.sequences, self.attention_mask, self.next_positions = cache, sequences, mask, positions
            return
        width = max(self.sequences.shape[1], sequences.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, width, 2), _pad_left(theirs.keys, width, 2)])
            mine.values = torch.cat([_pad_left(mine.values, width, 2), _pad_left(theirs.values, width, 2)])
        self.sequences = torch.cat(
            [_pad_left(self.sequences, width, 1, self.pad_token_id), _pad_left(sequences, width, 1, self.pad_token_id)]
        )
        self.attention_mask = torch.cat([_pad_left(self.attention_mask, width, 1), _pad_left(mask, width, 1)])
        self.next_positions = torch.cat([self.next_positions, positions])

    def _keep(self, rows: list[int]) -> None:
        """Keep only `rows`, and drop the leading columns that are padding in every one of them."""
        self.keys = [self.keys[row] for row in rows]
        self.limits = [self.limits[row] for row in rows]
        self.produced = [self.produced[row] for row in rows]
        if not rows:
            self._clear()
            return
        index = torch.tensor(rows, device=self.device)
        mask = self.attention_mask[index]
        start = int(mask.any(dim=0).long().argmax())  # the first column any kept row attends to
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[index, :, start:], layer.values[index, :, start:]
        self.sequences, self.attention_mask = self.sequences[index, start:], mask[:, start:]
        self.next_tokens, self.next_positions = self.next_tokens[index], self.next_positions[index]


def decode(
    model: PreTrainedModel,
    prompts: list[list[int]],
    limits: list[int],
    settings: GenerationConfig,
    pad_token_id: int,
    eos_token_id: int,
    stopped: Callable[[int], bool] = lambda row: False,
) -> Iterator[list[tuple[int, int]]]:
    """Yield, per decoding step, the (row, token id) pairs of the rows still running, all rows joining at once."""
    batch: DecodingBatch[int] = DecodingBatch(model, settings, pad_token_id, eos_token_id)
    step = batch.add(list(range(len(prompts))), prompts, limits, stopped)
    while True:
        if step.emitted:
            yield step.emitted
        if not batch:
            return
        step = batch.step(stopped)
