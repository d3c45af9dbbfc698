"""Dynamic batching: concurrent requests share decoding batches, keep their own limits, and a full queue refuses."""

import asyncio

import pytest

from components.config import BatchingConfig, GenerationConfig
from components.modelling.base_model import build_tiny, train_tokenizer
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.serving.batching import GenerationQueue, QueueFull
from tests.modelling.conftest import ARCHITECTURE, SAMPLE_QA


@pytest.fixture(scope="module")
def tiny():
    tokenizer = train_tokenizer(SAMPLE_QA, ARCHITECTURE.vocab_size)
    return build_tiny(ARCHITECTURE, tokenizer, seed=0), tokenizer


def queue_for(tiny, batch_size=4, max_wait_ms=200, max_queue=16):
    model, tokenizer = tiny
    generation = GenerationConfig(
        max_new_tokens=16, do_sample=False, temperature=1.0, top_p=1.0, repetition_penalty=1.1
    )
    batching = BatchingConfig(batch_size=batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue, retry_after_s=3)
    return GenerationQueue(model, tokenizer, PromptTemplate(max_description_tokens=64), generation, batching)


def prompt(tiny, question):
    return encode_prompt(tiny[1], PromptTemplate(max_description_tokens=64), question, "", "en")


async def collect(pieces):
    return "".join([piece async for piece in pieces])


def test_concurrent_requests_are_decoded_together_with_their_own_limits(tiny):
    generator = queue_for(tiny)
    questions = ["How do I sleep?", "Why am I anxious before exams?", "Is therapy worth it?"]

    async def ask_all():
        return await asyncio.gather(
            *(collect(generator.submit(prompt(tiny, q), limit)) for q, limit in zip(questions, [3, 16, 8], strict=True))
        )

    together = asyncio.run(ask_all())
    assert generator.batch_sizes == {3: 1}  # one batch of three

    async def one_by_one():
        return [
            await collect(generator.submit(prompt(tiny, q), limit))
            for q, limit in zip(questions, [3, 16, 8], strict=True)
        ]

    alone = asyncio.run(one_by_one())

    async def unlimited():
        return await collect(generator.submit(prompt(tiny, questions[0]), 16))

    longer = asyncio.run(unlimited())
    generator.close()
    assert together == alone  # batching changes nothing in an answer
    assert len(together[0]) < len(longer) and longer.startswith(together[0])  # row 0 stopped at its own limit


def test_a_full_queue_refuses_at_once_with_a_retry_hint(tiny):
    generator = queue_for(tiny, batch_size=1, max_wait_ms=0, max_queue=2)

    async def flood():
        accepted, refused = [], []
        for _ in range(8):
            try:
                accepted.append(generator.submit(prompt(tiny, "How do I sleep?"), 16))
            except QueueFull as busy:
                refused.append(busy)
        await asyncio.gather(*(collect(pieces) for pieces in accepted))
        return accepted, refused

    accepted, refused = asyncio.run(flood())
    generator.close()
    assert 2 <= len(accepted) <= 3 and len(refused) == 8 - len(accepted)
    assert refused[0].retry_after_s == 3 and "retry in 3 s" in str(refused[0])


def test_a_caller_that_stops_listening_frees_its_row(tiny):
    generator = queue_for(tiny, batch_size=2)

    async def one_leaves():
        leaving = generator.submit(prompt(tiny, "How do I sleep?"), 16)
        staying = generator.submit(prompt(tiny, "Why am I anxious?"), 16)
        await anext(leaving)
        await leaving.aclose()
        return await collect(staying)

    assert asyncio.run(one_leaves())
    assert generator.alive()
    generator.close()
    assert not generator.alive()
