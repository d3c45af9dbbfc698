"""The service class in-process: back-pressure (503 with Retry-After), urgent help while busy, and withheld output."""

import asyncio

import pytest
from ruamel.yaml import YAML
from starlette.responses import JSONResponse

from tests.conftest import PROJECT_ROOT
from tests.serving.servers import service_environment
from tests.serving.test_service import URGENT, WORRY


@pytest.fixture(scope="module")
def service(smoke_project, tmp_path_factory):
    """`PsyLLM()` with one row per batch and one waiting request at most, so a burst overflows."""
    folder = tmp_path_factory.mktemp("in-process")
    yaml = YAML()
    params = yaml.load((PROJECT_ROOT / "params.yaml").read_text())
    params["serve"]["batching"].update(batch_size=1, max_queue=1)
    with (folder / "params.yaml").open("w") as handle:
        yaml.dump(params, handle)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in service_environment(smoke_project, f"sqlite:///{folder / 'store.sqlite'}").items():
            patch.setenv(name, value)
        patch.chdir(folder)
        from service import PsyLLM

        instance = PsyLLM()
        yield instance
        instance.close()


def test_a_burst_beyond_the_queue_gets_503_with_retry_after_but_urgent_help_still_comes(service):
    async def burst():
        asks = [service.to_async.answer(question=WORRY, max_new_tokens=256) for _ in range(5)]
        urgent = service.to_async.answer(question=URGENT, max_new_tokens=256)
        return await asyncio.gather(*asks, urgent)

    *replies, urgent = asyncio.run(burst())
    busy = [reply for reply in replies if isinstance(reply, JSONResponse)]
    answered = [reply for reply in replies if isinstance(reply, dict)]
    assert answered and len(busy) >= 3
    assert {reply.status_code for reply in busy} == {503}
    assert busy[0].headers["retry-after"] == "2" and b"the service is busy" in busy[0].body
    assert isinstance(urgent, dict), "an urgent message is never refused for load"
    assert urgent["screening"]["urgent"] and urgent["answer"].startswith("It sounds like you")


def test_an_answer_that_reads_as_harm_is_withheld_and_recorded(service, monkeypatch):
    async def harmful(prompt_ids, max_new_tokens):  # an injected fault: the model writes something harmful
        for piece in ["You are right. ", "You should kill yourself ", "tonight."]:
            yield piece

    monkeypatch.setattr(service.answerer.generator, "submit", harmful)
    reply = asyncio.run(service.to_async.answer(question=WORRY))
    assert reply["withheld"] is True
    assert "kill yourself" not in reply["answer"] and "withheld by our safety check" in reply["answer"]
    [row] = [row for row in _answers(service) if row["request_id"] == reply["request_id"]]
    assert row["withheld"]


def _answers(service):
    from sqlalchemy import select

    from components.serving.store import answers

    with service.answerer.store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(answers))]
