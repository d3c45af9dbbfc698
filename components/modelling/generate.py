"""Answers as text: the one generation path for evaluation and serving.

Prompts come from the one template and are decoded by `decoding.DecodingBatch`, which hands out
each row's tokens as they are chosen, which is what lets the service stream. Each row stops at
EOS, at its own token limit, or when it starts a new "Question:" (a base model that was never
fine-tuned tends to run on into one); `AnswerText` turns a row's tokens into answer text, and
`stream_answers` hands out every row's text as it is released: `generate_answers` (evaluation)
joins the pieces, and the service's queue (`serving.batching`) sends them on as its rows, which
join the running batch between steps, produce them.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from components.config import GenerationConfig
from components.modelling.decoding import decode
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.progress import Progress


@dataclass(frozen=True)
class Question:
    """What a person asks: the question, optional details, and its language (en, zh, ...)."""

    question: str
    description: str
    language: str


def prompt_limit(model: PreTrainedModel, max_new_tokens: int) -> int:
    """How many prompt tokens fit before `max_new_tokens` more (a longer prompt keeps its end)."""
    return int(model.config.max_position_embeddings) - max_new_tokens


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
