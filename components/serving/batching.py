"""Continuous batching for the service: a request joins the running decoding batch between steps.

Requests wait in a bounded queue. One worker thread decodes a `DecodingBatch`: before each
step it prefills whatever has arrived (up to `batching.batch_size` rows in all), and a row that
ends leaves at once, so a request never waits for a whole batch to finish, and no row waits for
the slowest. Each row keeps its own token limit, and its text streams back to its caller as it
is released. A full queue refuses at once (`QueueFull`, which the service turns into 503 with
Retry-After) instead of letting latency grow without bound.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from components.config import BatchingConfig, GenerationConfig
from components.modelling.decoding import DecodingBatch, Step
from components.modelling.generate import AnswerText
from components.modelling.prompt import PromptTemplate
from components.serving.contract import QueueFull

log = logging.getLogger(__name__)
_END = None


@dataclass(eq=False)  # a row of the decoding batch, known by identity
class _Request:
    prompt_ids: list[int]
    max_new_tokens: int
    loop: asyncio.AbstractEventLoop
    text: AnswerText
    pieces: asyncio.Queue[str | BaseException | None] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def send(self, item: str | BaseException | None) -> None:
        """Hand an item to the caller's event loop, unless the caller has gone (stopped or loop closed)."""
        if self.cancelled.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            self.loop.call_soon_threadsafe(self.pieces.put_nowait, item)


class GenerationQueue:
    """The model behind a queue; `stream` yields one answer's text pieces as they are decoded."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        template: PromptTemplate,
        generation: GenerationConfig,
        batching: BatchingConfig,
    ) -> None:
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.generation, self.batching = generation, batching
        self.waiting: queue.Queue[_Request] = queue.Queue(maxsize=batching.max_queue)
        self.rows_per_step: Counter[int] = Counter()  # how many decoding steps ran with each number of rows
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._work, name="psyllm-generation", daemon=True)
        self._worker.start()

    def submit(self, prompt_ids: list[int], max_new_tokens: int) -> AsyncGenerator[str, None]:
        """Queue a prompt now (or raise QueueFull); iterate the result for its text pieces."""
        request = _Request(
            prompt_ids, max_new_tokens, asyncio.get_running_loop(), AnswerText(self.tokenizer, self.template)
        )
        try:
            self.waiting.put_nowait(request)
        except queue.Full:
            raise QueueFull(self.batching.retry_after_s) from None
        return self._pieces(request)

    async def _pieces(self, request: _Request) -> AsyncGenerator[str, None]:
        try:
            while (item := await request.pieces.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            request.cancelled.set()  # a caller that stops listening frees its row

    def alive(self) -> bool:
        """Whether the decoding worker is running (the service's readiness)."""
        return self._worker.is_alive() and not self._closed.is_set()

    def close(self) -> None:
        """Take no more requests; the answers already decoding finish first (for up to 30 s)."""
        self._closed.set()
        self._worker.join(timeout=30)

    def _joining(self, running: int) -> list[_Request]:
        """The waiting requests that fit beside `running` rows; waits for one only when none is running."""
        joining: list[_Request] = []
        with contextlib.suppress(queue.Empty):
            if not running:
                joining.append(self.waiting.get(timeout=0.2))
            while running + len(joining) < self.batching.batch_size:
                joining.append(self.waiting.get_nowait())
        return [request for request in joining if not request.cancelled.is_set()]

    def _work(self) -> None:
        batch: DecodingBatch[_Request] = self._empty_batch()
        while not self._closed.is_set() or batch:
            joining = [] if self._closed.is_set() else self._joining(len(batch))
            try:
                if joining:
                    self._send(
                        batch.add(
                            joining, [r.prompt_ids for r in joining], [r.max_new_tokens for r in joining], _stopped
                        )
                    )
                if batch:
                    self.rows_per_step[len(batch)] += 1
                    self._send(batch.step(_stopped))
            except Exception as failure:  # the batch's callers get the error; the worker goes on with a new batch
                log.exception("decoding a batch of %d rows failed", len(batch))
                for request in {*batch.keys, *joining}:
                    request.send(failure)
                batch = self._empty_batch()

    def _empty_batch(self) -> DecodingBatch[_Request]:
        return DecodingBatch(self.model, self.generation, self.tokenizer.pad_token_id, self.tokenizer.eos_token_id)

    @staticmethod
    def _send(step: Step[_Request]) -> None:
        for request, token in step.emitted:
            if piece := request.text.push(token):
                request.send(piece)
        for request in step.finished:
            if piece := request.text.finish():
                request.send(piece)
            request.send(_END)


def _stopped(request: _Request) -> bool:
    """A row ends early once its answer is cut at a new question, or its caller has stopped listening."""
    return request.text.cut or request.cancelled.is_set()
