"""The Psy-LLM service: BentoML endpoints for answers, screening and ratings; pages, campaigns and cases.

`psyllm serve` runs it from the project (`bentoml serve service:PsyLLM`); `psyllm package`
bakes the champion into a Bento. Every answer path screens first (components/serving/answering.py).
Errors are JSON `{"error": ...}` with a 4xx status (503 with Retry-After when busy), never a trace;
logs carry request ids and screening levels, never what a person wrote.
"""

import asyncio
import hmac
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import bentoml
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field, StrictInt, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from components.console.routes import router as console_routes
from components.errors import PsyllmError
from components.locations import API_KEY_ENV
from components.screening.screener import InvalidMessage
from components.serving.campaign_store import CampaignStore
from components.serving.contract import AnswerRequest, check_request, collect, screening_json
from components.serving.lifecycle import drain_on_sigterm, draining, exit_with_parent
from components.serving.responses import error, page, refusal
from components.serving.runtime import build_answerer, build_console

if TYPE_CHECKING:  # the model's libraries load in the worker (build_answerer), not in BentoML's manager
    from components.serving.answering import Answerer

ROOT = Path(__file__).resolve().parent
PAGES = ROOT / "components" / "serving"
Score = Annotated[StrictInt, Field(ge=1, le=5)]
API_ROUTES = {"/answer", "/answer_stream", "/screen", "/feedback"}
log = logging.getLogger("psyllm.service")


class _NoInputValues(logging.Filter):
    """BentoML logs a rejected request's validation error with its input values; keep only where and why."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            where = "; ".join(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors())
            record.msg, record.args, record.exc_info = f"{record.getMessage()}: rejected input ({where})", (), None
            record.levelno, record.levelname = logging.INFO, "INFO"  # the client's mistake, not the service's
        return True


logging.getLogger("bentoml._internal.server.http_app").addFilter(_NoInputValues())


class RefuseWhileDraining:
    """Once SIGTERM has started the drain, a request that still reaches this worker gets 503 with Retry-After
    (uvicorn has closed the listening socket; this covers requests on connections already open)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and draining() and scope["path"] not in ("/livez", "/metrics"):
            response = error(503, "the service is shutting down; retry on another replica", {"Retry-After": "5"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class JsonBodiesOnly:
    """Refuse a non-JSON body to the API with 415 before BentoML parses it (its form parser answers a
    malformed multipart body with a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in API_ROUTES:
            content_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
            if content_type not in ("", "application/json"):
                response = error(415, f"send the body as JSON (content-type: application/json), not {content_type!r}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
web.include_router(console_routes)


@web.exception_handler(RequestValidationError)
async def invalid_request(_: Request, invalid: RequestValidationError) -> JSONResponse:
    """A malformed path or query (a conversation id that is not a number) as 400 naming where, never the value."""
    return error(
        400, "; ".join(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in invalid.errors())
    )


def _answerer() -> "Answerer":
    return bentoml.get_current_service().answerer


def _campaigns() -> CampaignStore:
    return bentoml.get_current_service().campaigns


def _authorised(api_key: str | None) -> JSONResponse | None:
    expected = os.environ.get(API_KEY_ENV)
    if not expected:
        return error(401, f"the case queue is off: set {API_KEY_ENV} on the server")
    if api_key is None or not hmac.compare_digest(api_key.encode(), expected.encode()):
        return error(401, "missing or wrong X-API-Key header")
    return None


@web.get("/", response_class=HTMLResponse)
def ask_page() -> HTMLResponse:
    return page(PAGES / "page.html")


@web.get("/rate", response_class=HTMLResponse)
def rate_page() -> HTMLResponse:
    """A campaign's rating page; the rater's token travels in the URL fragment, never to the server's log."""
    return page(PAGES / "rate.html")


async def _rater_request(request: Request) -> tuple[str, dict[str, Any]]:
    """The rater's token and the rest of a JSON object body, or a PsyllmError saying what is wrong."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise PsyllmError("send a JSON object") from None
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not 0 < len(body["token"]) <= 100:
        raise PsyllmError("send a JSON object with your rating link's token")
    return body.pop("token"), body


@web.post("/rate/next")
async def next_campaign_item(request: Request) -> JSONResponse:
    """The rater's next item (two answers as A and B) and their progress; `item` is null once all are done."""
    try:
        token, _ = await _rater_request(request)
        return JSONResponse(await asyncio.to_thread(_campaigns().next_item, token))
    except PsyllmError as refused:
        return refusal(refused)


@web.post("/rate/judge")
async def judge_campaign_item(request: Request) -> JSONResponse:
    """One judgement: `item_id`, the four scores of `A` and of `B`, and `preference` (A, B or tie)."""
    try:
        token, body = await _rater_request(request)
        item_id = body.get("item_id")
        if not isinstance(item_id, str):
            raise PsyllmError("item_id: the item's id, as /rate/next gave it")
        scores = {side: body.get(side) for side in ("A", "B")}
        progress = await asyncio.to_thread(_campaigns().judge, token, item_id, scores, body.get("preference"))
        return JSONResponse({"progress": progress})
    except PsyllmError as refused:
        return refusal(refused)


ApiKey = Annotated[str | None, Header()]


@web.get("/cases")
def open_cases(status: str | None = None, x_api_key: ApiKey = None) -> JSONResponse:
    """Urgent cases for counsellors (explicit statements first, then newest), with the question only if text
    storage is on."""
    if refused := _authorised(x_api_key):
        return refused
    if status not in (None, "open", "resolved"):
        return error(400, "status: expected open or resolved")
    try:
        return JSONResponse({"cases": _answerer().store.cases(status)})
    except PsyllmError as refused:
        return refusal(refused)


@web.post("/cases/{case_id}/resolve")
def resolve_case(case_id: int, resolved_by: str = "counsellor", x_api_key: ApiKey = None) -> JSONResponse:
    """Close a case once a counsellor has acted on it."""
    if refused := _authorised(x_api_key):
        return refused
    try:
        return JSONResponse(_answerer().store.resolve_case(case_id, resolved_by[:100]))
    except PsyllmError as refused:
        return refusal(refused)


@web.get("/ratings")
def export_ratings(x_api_key: ApiKey = None) -> JSONResponse:
    """Every rating with its model version: the paper's human evaluation, for export."""
    if refused := _authorised(x_api_key):
        return refused
    try:
        return JSONResponse({"ratings": _answerer().store.ratings()})
    except PsyllmError as refused:
        return refusal(refused)


@bentoml.service(
    name="psyllm",
    workers=1,
    traffic={"timeout": 300, "max_concurrency": 64},
    http={"cors": {"enabled": False}},
    endpoints={"livez": "/livez", "readyz": "/readyz"},
)
@bentoml.asgi_app(web, path="/")
class PsyLLM:
    """One process holds the model; concurrent requests share its decoding batches."""

    def __init__(self) -> None:
        exit_with_parent()  # first: a worker whose server died while the model loads must not linger
        self.answerer = build_answerer(Path.cwd())
        self.campaigns = CampaignStore(self.answerer.store.engine)
        self.console = build_console(self.answerer, Path.cwd())
        drain_on_sigterm(self.answerer.config.shutdown_timeout_s)

    def __is_ready__(self) -> bool:
        """Ready: the model decodes, the store answers, and no drain has begun."""
        return self.answerer.generator.alive() and not draining() and self.answerer.store.reachable()

    @bentoml.on_shutdown
    def close(self) -> None:
        if self.console is not None:
            self.console.stop()
        self.answerer.close()

    def _events(self, request: AnswerRequest) -> AsyncIterator[dict[str, Any]]:
        """The answer's events; with the console on, in a conversation the asker can come back to."""
        events = self.answerer.events(request)
        if self.console is None:
            return events
        return self.console.asked(events, f"{request.question}\n{request.description}".strip())

    @bentoml.api(route="/screen")
    def screen(self, text: str) -> dict[str, Any]:
        """The screening verdict for a message: urgent, level, categories and reasons."""
        try:
            return screening_json(self.answerer.screener.screen(text))
        except InvalidMessage as bad:
            return refusal(bad)

    @bentoml.api(route="/answer")
    async def answer(self, question: str, description: str = "", max_new_tokens: int | None = None) -> dict[str, Any]:
        """The whole answer at once: `{answer, screening, model_version, request_id, withheld}`."""
        try:
            request = check_request(
                question, description, max_new_tokens, self.answerer.config, self.answerer.generation.max_new_tokens
            )
            return await collect(self._events(request))
        except PsyllmError as refused:
            return refusal(refused)

    @bentoml.api(route="/answer_stream")
    async def answer_stream(
        self, ctx: bentoml.Context, question: str, description: str = "", max_new_tokens: int | None = None
    ) -> AsyncGenerator[str, None]:
        """The answer as JSON lines: screening first, then crisis help (if any), text pieces, and done."""
        ctx.response.metadata["content-type"] = "application/x-ndjson"
        try:
            request = check_request(
                question, description, max_new_tokens, self.answerer.config, self.answerer.generation.max_new_tokens
            )
            events = self._events(request)
            first = await anext(events)
        except PsyllmError as refused:
            response = refusal(refused)
            ctx.response.status_code = response.status_code
            ctx.response.metadata["content-type"] = "application/json"
            if "retry-after" in response.headers:
                ctx.response.metadata["retry-after"] = response.headers["retry-after"]
            yield response.body.decode()
            return
        yield json.dumps(first, ensure_ascii=False) + "\n"
        async for event in events:
            yield json.dumps(event, ensure_ascii=False) + "\n"

    @bentoml.api(route="/feedback")
    def feedback(
        self,
        request_id: Annotated[str, Field(max_length=64)],
        helpfulness: Score,
        fluency: Score,
        relevance: Score,
        logic: Score,
        comment: Annotated[str, Field(max_length=2000)] | None = None,
        rater_id: Annotated[str, Field(max_length=100)] | None = None,
    ) -> dict[str, Any]:
        """One person's rating of one answer on the paper's four 1–5 scales (once per rater)."""
        scores = {"helpfulness": helpfulness, "fluency": fluency, "relevance": relevance, "logic": logic}
        try:
            rating_id = self.answerer.store.add_rating(request_id, scores, rater_id, comment)
        except PsyllmError as refused:
            return refusal(refused)
        log.info("request %s: rated", request_id)
        return {"rating_id": rating_id, "request_id": request_id}


PsyLLM.add_asgi_middleware(JsonBodiesOnly)
PsyLLM.add_asgi_middleware(RefuseWhileDraining)
