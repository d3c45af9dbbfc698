"""One answer, start to finish: check, screen, record, lead with help when urgent, stream, screen again.

Every path to model text goes through `Answerer.events`:
1. the request is checked (clear `InvalidRequest` messages, nothing stored);
2. the message is screened before any model text exists, and the verdict is the first event;
3. the answer (and for an urgent message its case for the counsellors' queue) is recorded, when
   there is a store: a registry client (components/serving/pyfunc.py) answers with none;
4. an urgent message gets the fixed, human-written `crisis_reply` (saying a counsellor was told
   only when its case was opened) and no generated advice at all: nothing is generated for it;
   an elevated message gets the gentler reply followed by the model's answer. When the service
   is too busy to generate, only a message with no risk gets 503;
5. model text streams in pieces, and the answer so far is checked before each piece is
   released: an answer that encourages harm (`screening.output`) is withheld, recorded and logged.
Logs carry request ids, levels and categories, never what a person wrote.
"""

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from components.config import GenerationConfig, ServeConfig
from components.language import detect_language
from components.modelling.generate import prompt_limit
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.screening import Screener, crisis_reply
from components.screening.crisis import reply_language
from components.screening.output import encourages_harm
from components.serving.batching import GenerationQueue
from components.serving.contract import AnswerRequest, QueueFull, collect, screening_json
from components.serving.store import IssuedAnswer, Store, StoreUnavailable, new_request_id

log = logging.getLogger(__name__)
# Release model text in pieces of about a clause, each screened with everything before it.
_PIECE_END = re.compile(r"[.!?。！？；;\n]\s*$")
_PIECE_CHARS = 40
WITHHELD_NOTICE = {
    "en": (
        "The generated answer was withheld by our safety check. Please talk to a counsellor or one of "
        "the services above; if you are in danger, call your local emergency number."
    ),
    "zh": (
        "生成的回答未通过安全检查，已被拦截。请联系心理咨询师或上面列出的求助渠道；如有危险，请立即拨打当地急救电话。"
    ),
}


class Answerer:
    """The model, screener and store behind every answer: the service's endpoints and the registered model.

    With no store (`store=None`: a registry client's notebook or batch job) nothing is recorded and no
    case opens, so an urgent message's crisis reply does not claim that a counsellor was told.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        template: PromptTemplate,
        generation: GenerationConfig,
        screener: Screener,
        store: Store | None,
        config: ServeConfig,
        model_version: str,
    ) -> None:
        self.model, self.tokenizer, self.template, self.generation = model, tokenizer, template, generation
        self.screener, self.store, self.config = screener, store, config
        self.model_version = model_version
        self.generator = GenerationQueue(model, tokenizer, template, generation, config.batching)

    def close(self) -> None:
        self.generator.close()
        if self.store is not None:
            self.store.close()

    def answer_all(self, requests: list[AnswerRequest]) -> list[dict[str, Any]]:
        """Every request's whole answer, in order, from outside an event loop (a batch job, a notebook).

        At most a decoding batch is queued at once, so a long input never overflows the queue.
        """
        batching = self.config.batching

        async def answer_each() -> list[dict[str, Any]]:
            room = asyncio.Semaphore(min(batching.batch_size, batching.max_queue))

            async def answer(request: AnswerRequest) -> dict[str, Any]:
                async with room:
                    return await self.answer(request)

            return await asyncio.gather(*(answer(request) for request in requests))

        with ThreadPoolExecutor(1) as runner:  # a loop of its own, even when called from one (a notebook)
            return runner.submit(asyncio.run, answer_each()).result()

    async def answer(self, request: AnswerRequest) -> dict[str, Any]:
        """The whole answer at once: `{answer, screening, model_version, request_id, withheld}`."""
        return await collect(self.events(request))

    async def events(self, request: AnswerRequest) -> AsyncIterator[dict[str, Any]]:
        """The answer as events: screening, then crisis (if any), text pieces, and done or withheld."""
        message = f"{request.question}\n{request.description}".strip()
        screening = self.screener.screen(message)
        language = detect_language(message)
        request_id = new_request_id()
        pieces = None
        try:
            if not screening.urgent:
                pieces = self._submit(request.question, request.description, language, request.max_new_tokens)
        except QueueFull:
            if screening.level == "none":
                raise
        issued = IssuedAnswer(
            request_id, self.model_version, screening.level, screening.categories, request.question, screening.basis
        )
        case_id = await self._record(issued, screening.urgent)
        log.info("request %s: screened %s %s", request_id, screening.level, ",".join(screening.categories) or "-")
        if case_id is not None:
            log.warning("request %s: urgent case %s queued for a counsellor", request_id, case_id)
        yield {"type": "screening", "request_id": request_id, "model_version": self.model_version,
               "screening": screening_json(screening)}  # fmt: skip
        reply = crisis_reply(screening, self.config.region, language, case_opened=case_id is not None)
        if reply is not None:
            services = [{"name": service.names[reply.language], "phone": service.phone, "text": service.text,
                         "url": service.url} for service in reply.services]  # fmt: skip
            yield {"type": "crisis", "text": reply.text, "region": reply.region, "services": services}
        if pieces is None:
            yield {"type": "done", "request_id": request_id, "generated": False}
            return
        async for event in self._screened(pieces, request_id, reply_language(language)):
            yield event

    async def draft(self, question: str, description: str, language: str) -> str | None:
        """The model's whole answer for a counsellor to edit (the console), released by the same output check as
        a streamed answer: None when the check withholds it. The caller decides whether model text may be drafted."""
        new_tokens = min(self.generation.max_new_tokens, self.config.max_new_tokens)
        pieces = self._submit(question, description, language, new_tokens)
        released = []
        async for event in self._screened(pieces, None, reply_language(language)):
            if event["type"] == "withheld":
                return None
            if event["type"] == "text":
                released.append(event["text"])
        return "".join(released).strip()

    def _submit(self, question: str, description: str, language: str, max_new_tokens: int) -> AsyncGenerator[str, None]:
        """Queue the prompt (its end, where it is too long) for decoding; its pieces as they are chosen."""
        limit = prompt_limit(self.model, max_new_tokens)
        prompt = encode_prompt(self.tokenizer, self.template, question, description, language)[-limit:]
        return self.generator.submit(prompt, max_new_tokens)

    async def _screened(
        self, pieces: AsyncGenerator[str, None], request_id: str | None, language: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Model text in clause-sized pieces, each released only if the answer so far encourages no harm.
        `request_id`: the issued answer to flag when withheld (None for a counsellor's draft, which is not issued)."""
        released, pending = "", ""
        async for piece in pieces:
            pending += piece
            if len(pending) >= _PIECE_CHARS or _PIECE_END.search(pending):
                if self._reads_as_harm(released + pending):
                    break
                yield {"type": "text", "text": pending}
                released, pending = released + pending, ""
        else:
            if not (pending and self._reads_as_harm(released + pending)):
                if pending:
                    yield {"type": "text", "text": pending}
                yield {"type": "done", "request_id": request_id, "generated": True}
                return
        await pieces.aclose()  # frees the row in the batch
        if self.store is not None and request_id is not None:
            try:
                await asyncio.to_thread(self.store.mark_withheld, request_id)
            except StoreUnavailable:
                log.error("request %s: the withheld answer could not be flagged (the store is unavailable)", request_id)
        log.warning(
            "%s: generated text withheld (it encourages harm)", f"request {request_id}" if request_id else "draft"
        )
        yield {"type": "withheld", "text": WITHHELD_NOTICE[language]}
        yield {"type": "done", "request_id": request_id, "generated": False}

    async def _record(self, issued: IssuedAnswer, urgent: bool) -> int | None:
        """Record the answer (and open an urgent case): the case's id, or None when none was opened.

        Screening, the crisis reply and the answer never wait on the database: with the store
        unavailable the answer goes out unrecorded, and an urgent one's reply promises no counsellor.
        """
        if self.store is None:
            return None
        try:
            return await asyncio.to_thread(self.store.record_answer, issued, urgent)
        except StoreUnavailable:
            if urgent:
                log.error("request %s: URGENT case NOT queued: the store is unavailable", issued.request_id)
            else:
                log.warning("request %s: answered unrecorded (the store is unavailable)", issued.request_id)
            return None

    @staticmethod
    def _reads_as_harm(answer: str) -> bool:
        return bool(encourages_harm(answer))
