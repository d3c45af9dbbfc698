"""Batched, KV-cached answer decoding: the one generation path for evaluation and serving.

Prompts come from the one template and are left-padded into a batch, so every row's next
token sits in the last column and one KV cache serves the whole batch. `decode` is a plain
step loop that hands out each row's tokens as they are chosen, which is what lets the service
stream; `generate_answers` (evaluation) drains the same loop. Each row stops at EOS, at its
own token limit, or when it starts a new "Question:" (a base model that was never
fine-tuned tends to run on into one); `AnswerText` turns a row's tokens into answer text, and
`stream_answers` hands out every row's text as it is released: the service sends the pieces on,
`generate_answers` (evaluation) joins them.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from transformers import (
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from components.config import GenerationConfig
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.progress import Progress


@dataclass(frozen=True)
class Question:
    """What a person asks: the question, optional details, and its language (en, zh, ...)."""

    question: str
    description: str
    language: str


def _processors(settings: GenerationConfig) -> LogitsProcessorList:
    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.do_sample:
        processors.append(TemperatureLogitsWarper(settings.temperature))
        processors.append(TopPLogitsWarper(settings.top_p))
    return processors


def prompt_limit(model: PreTrainedModel, max_new_tokens: int) -> int:
    """How many prompt tokens fit before `max_new_tokens` more (a longer prompt keeps its end)."""
    return int(model.config.max_position_embeddings) - max_new_tokens


@torch.no_grad()
def decode(
    model: PreTrainedModel,
    prompts: list[list[int]],
    limits: list[int],
    settings: GenerationConfig,
    pad_token_id: int,
    eos_token_id: int,
    stopped: Callable[[int], bool] = lambda row: False,
) -> Iterator[list[tuple[int, int]]]:
    """Yield, per decoding step, the (row, token id) pairs of the rows still running.

    Row `row` stops after `limits[row]` tokens, at EOS (not yielded), or as soon as
    `stopped(row)` is true: the caller's way to end a row early (a cut answer, a client gone).
    """
    model.eval()
    device = next(model.parameters()).device
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    processors = _processors(settings)
    running = [True] * len(prompts)
    produced = [0] * len(prompts)
    sequences, step_input, cache = input_ids, input_ids, None
    for step in range(max(limits)):
        output = model(
            input_ids=step_input,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
            cache_position=torch.arange(width + step - step_input.shape[1], width + step, device=device),
        )
        cache = output.cache
        scores = processors(sequences, output.logits[:, -1, :].float())
        if settings.do_sample:
            chosen = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            chosen = scores.argmax(dim=-1)
        emitted: list[tuple[int, int]] = []
        for row, token in enumerate(chosen.tolist()):
            running[row] = running[row] and token != eos_token_id and not stopped(row)
            if running[row]:
                emitted.append((row, token))
                produced[row] += 1
                running[row] = produced[row] < limits[row]
            else:
                chosen[row] = pad_token_id
        if emitted:
            yield emitted
        if not any(running):
            return
        step_input = chosen.unsqueeze(1)
        sequences = torch.cat([sequences, step_input], dim=1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(prompts), 1))], dim=1)
        position_ids = position_ids[:, -1:] + 1


class AnswerText:
    """One row's answer as its tokens arrive: the text so far, released in safe pieces.

    Text is held back while it could still be the start of a new "Question:" line, or while
    it ends inside an unfinished multi-byte character, so released text is never taken back.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, template: PromptTemplate) -> None:
        self.tokenizer = tokenizer
        self.markers = [
            f"\n{template.labels[language]['question']}{template.separators[language]}" for language in template.labels
        ]
        self.token_ids: list[int] = []
        self.released = ""
        self.cut = False

    def _text(self) -> str:
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True).lstrip()
        for marker in self.markers:
            if marker in text:
                text, self.cut = text.split(marker, 1)[0], True
        return text

    def push(self, token_id: int) -> str:
        """Add a token; return the newly released text (often empty)."""
        self.token_ids.append(token_id)
        text = self._text()
        if not self.cut:
            hold = max(len(marker) for marker in self.markers)
            text = text[: max(len(text) - hold, len(self.released))]
            text = text.rstrip("\ufffd")
        return self._release(text.rstrip() if self.cut else text)

    def finish(self) -> str:
        """The rest of the answer, once its row has stopped."""
        return self._release(self._text().rstrip())

    def _release(self, text: str) -> str:
        if len(text) <= len(self.released):
            return ""
        piece, self.released = text[len(self.released) :], text
        return piece


def stream_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    prompts: list[list[int]],
    limits: list[int],
    settings: GenerationConfig,
    cancelled: Callable[[int], bool] = lambda row: False,
) -> Iterator[tuple[int, str]]:
    """(row, text piece) as each row's answer is released; a row also stops once `cancelled(row)`."""
    texts = [AnswerText(tokenizer, template) for _ in prompts]
    steps = decode(
        model, prompts, limits, settings, tokenizer.pad_token_id, tokenizer.eos_token_id,
        stopped=lambda row: texts[row].cut or cancelled(row),
    )  # fmt: skip
    for emitted in steps:
        for row, token in emitted:
            if piece := texts[row].push(token):
                yield row, piece
    for row, text in enumerate(texts):
        if piece := text.finish():
            yield row, piece


def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    questions: list[Question],
    settings: GenerationConfig,
    batch_size: int,
    seed: int = 0,
) -> list[str]:
    """One answer per question, in order, decoded `batch_size` questions at a time."""
    torch.manual_seed(seed)
    limit = prompt_limit(model, settings.max_new_tokens)
    answers: list[str] = []
    progress = Progress("generating answers", len(questions), unit="question")
    for start in range(0, len(questions), batch_size):
        batch = questions[start : start + batch_size]
        prompts = [
            encode_prompt(tokenizer, template, item.question, item.description, item.language)[-limit:]
            for item in batch
        ]
        pieces: list[list[str]] = [[] for _ in batch]
        for row, piece in stream_answers(
            model, tokenizer, template, prompts, [settings.max_new_tokens] * len(batch), settings
        ):
            pieces[row].append(piece)
        answers.extend("".join(row) for row in pieces)
        progress.advance(len(batch))
    return answers
