"""Continuous batching: requests join the running batch, keep their own limits, and a full queue refuses."""

import asyncio

import pytest

from components.config import BatchingConfig, GenerationConfig
from components.modelling.base_model import build_tiny, train_tokenizer
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.serving.batching import GenerationQueue
from components.serving.contract import QueueFull
from tests.modelling.conftest import ARCHITECTURE, SAMPLE_QA


@pytest.fixture(scope="module")
def tiny():
    tokenizer = train_tokenizer(SAMPLE_QA, ARCHITECTURE.vocab_size)
    return build_tiny(ARCHITECTURE, tokenizer, seed=0), tokenizer


def queue_for(tiny, batch_size=4, max_queue=16):
    model, tokenizer = tiny
    generation = GenerationConfig(
        max_new_tokens=16, do_sample=False, temperature=1.0, top_p=1.0, repetition_penalty=1.1
    )
    batching = BatchingConfig(batch_size=batch_size, max_queue=max_queue, retry_after_s=3)
    return GenerationQueue(model, tokenizer, PromptTemplate(max_description_tokens=64), generation, batching)


def prompt(tiny, question):
    return encode_prompt(tiny[1], PromptTemplate(max_description_tokens=64), question, "", "en")


async def collect(pieces):
    return "".join([piece async for piece in pieces])


def test_requests_join_the_running_batch_and_keep_their_own_limits(tiny):
    generator = queue_for(tiny)
    # The first runs on (no EOS within 120 tokens of this tiny model), so the others join it mid-answer.
    questions = ["Is therapy worth it?", "How do I sleep?", "Why am I anxious before exams?"]
    limits = [120, 3, 8]
    finished: list[int] = []

    async def answer(index, pieces):
        text = await collect(pieces)
        finished.append(index)
        return text

    async def staggered():
        first = generator.submit(prompt(tiny, questions[0]), limits[0])
        while not generator.rows_per_step:  # the first request is decoding alone
            await asyncio.sleep(0.001)
        later = [generator.submit(prompt(tiny, q), limit) for q, limit in zip(questions[1:], limits[1:], strict=True)]
        return await asyncio.gather(answer(0, first), *(answer(i + 1, p) for i, p in enumerate(later)))

    together = asyncio.run(staggered())
    assert max(generator.rows_per_step) == 3  # the later two joined the running row
    assert finished.index(1) < finished.index(0)  # a short request did not wait for the long one to finish

    async def one_by_one():
        return [
            await collect(generator.submit(prompt(tiny, q), limit)) for q, limit in zip(questions, limits, strict=True)
        ]

    alone = asyncio.run(one_by_one())

    async def unlimited():
        return await collect(generator.submit(prompt(tiny, questions[1]), 16))

    longer = asyncio.run(unlimited())
    generator.close()
    assert together == alone  # joining a running batch changes nothing in an answer
    assert len(together[1]) < len(longer) and longer.startswith(together[1])  # row 1 stopped at its own limit


def test_a_full_queue_refuses_at_once_with_a_retry_hint(tiny):
    generator = queue_for(tiny, batch_size=1, max_queue=2)

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


def test_closing_lets_the_answers_already_decoding_finish(tiny):
    def answer_alone(limit):
        generator = queue_for(tiny)

        async def ask():
            return await collect(generator.submit(prompt(tiny, "Is therapy worth it?"), limit))

        text = asyncio.run(ask())
        generator.close()
        return text

    generator = queue_for(tiny)

    async def close_mid_answer():
        pieces = generator.submit(prompt(tiny, "Is therapy worth it?"), 120)  # no EOS within 120 tokens
        while not generator.rows_per_step:  # decoding has started
            await asyncio.sleep(0.001)
        closing = asyncio.get_running_loop().run_in_executor(None, generator.close)
        text = await asyncio.wait_for(collect(pieces), timeout=30)
        await closing
        return text

    assert asyncio.run(close_mid_answer()) == answer_alone(120)
    assert not generator.alive() and sum(generator.rows_per_step.values()) > 1
