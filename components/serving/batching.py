"""Dynamic batching for the service: concurrent requests share one decoding batch.

Requests wait in a bounded queue. One worker thread takes the first waiting request, waits up
to `max_wait_ms` for more (up to `batching.batch_size`), and decodes them together with
`generate.stream_answers`; each row keeps its own token limit, and its text streams back to its
caller as it is released. A full queue refuses at once (`QueueFull`, which the service turns
into 503 with Retry-After) instead of letting latency grow without bound.
"""

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from components.config import BatchingConfig, GenerationConfig
from components.errors import PsyllmError
from components.modelling.generate import stream_answers
from components.modelling.prompt import PromptTemplate

log = logging.getLogger(__name__)
_END = None


class QueueFull(PsyllmError):
    """Too many requests are waiting; the caller should retry after `retry_after_s`."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the service is busy; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class _Request:
    prompt_ids: list[int]
    max_new_tokens: int
    loop: asyncio.AbstractEventLoop
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
        self.batch_sizes: Counter[int] = Counter()  # how many batches of each size were decoded
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._work, name="psyllm-generation", daemon=True)
        self._worker.start()

    def submit(self, prompt_ids: list[int], max_new_tokens: int) -> AsyncGenerator[str, None]:
        """Queue a prompt now (or raise QueueFull); iterate the result for its text pieces."""
        request = _Request(prompt_ids, max_new_tokens, asyncio.get_running_loop())
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
        self._closed.set()
        self._worker.join(timeout=30)

    def _next_batch(self) -> list[_Request]:
        try:
            batch = [self.waiting.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batching.max_wait_ms / 1000
        while len(batch) < self.batching.batch_size:
            try:
                batch.append(self.waiting.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return [request for request in batch if not request.cancelled.is_set()]

    def _work(self) -> None:
        while not self._closed.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            self.batch_sizes[len(batch)] += 1
            try:
                self._decode(batch)
            except Exception as failure:  # the callers get the error; the worker goes on
                log.exception("decoding a batch of %d failed", len(batch))
                for request in batch:
                    request.send(failure)
            else:
                for request in batch:
                    request.send(_END)

    def _decode(self, batch: list[_Request]) -> None:
        pieces = stream_answers(
            self.model, self.tokenizer, self.template,
            [request.prompt_ids for request in batch], [request.max_new_tokens for request in batch],
            self.generation, cancelled=lambda row: batch[row].cancelled.is_set(),
        )  # fmt: skip
        for row, piece in pieces:
            batch[row].send(piece)
