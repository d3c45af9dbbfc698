"""The console's HTTP surface, mounted by service.py: the asker's conversation page and the counsellors'.

Askers hold a conversation's link token (in the URL fragment, so no server log sees it) and send it
in the body. Counsellors sign in with their token and then hold a session cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS, path /console); every state-changing request must also carry
the session's CSRF token in `X-CSRF-Token` and a JSON body, which a form on another site cannot send.
Everything a person or the model wrote reaches the pages as JSON and is shown with textContent.
"""

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import bentoml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from components.console.accounts import SESSION_HOURS, Counsellor, Forbidden, SignInRefused
from components.console.console import Console
from components.console.drafting import draft_reply
from components.console.keys import ConsoleOff
from components.errors import PsyllmError
from components.language import detect_language
from components.screening import crisis_reply
from components.serving.contract import screening_json
from components.serving.responses import page, refusal
from components.serving.store import StoreUnavailable

log = logging.getLogger(__name__)
COOKIE = "psyllm_console"
PAGES = Path(__file__).resolve().parent
MAX_REPLY_CHARS = 8000
router = APIRouter()


def _console() -> Console:
    console = bentoml.get_current_service().console
    if console is None:
        raise ConsoleOff()
    return console


def _require_json(request: Request) -> None:
    """A cross-site form can post form encodings only; JSON takes a script of the page's own origin."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise PsyllmError("send the body as JSON (content-type: application/json)")


async def _json_body(request: Request) -> dict[str, Any]:
    _require_json(request)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise PsyllmError("send a JSON object") from None
    if not isinstance(body, dict):
        raise PsyllmError("send a JSON object")
    return body


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


def _text(body: dict[str, Any], field: str, limit: int, required: bool = True) -> str:
    value = body.get(field, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise PsyllmError(
            f"{field}: text of 1 to {limit:,} characters" if required else f"{field}: text up to {limit:,}"
        )
    return value


# The person who asked.


@router.get("/c", response_class=HTMLResponse)
def conversation_page() -> HTMLResponse:
    return page(PAGES / "conversation.html")


@router.post("/conversation")
async def asker_conversation(request: Request) -> JSONResponse:
    """The conversation behind a link: `{messages, human_replied}`."""
    try:
        token = _text(await _json_body(request), "token", 100)
        return JSONResponse(await asyncio.to_thread(_console().conversations.for_asker, token))
    except PsyllmError as refused:
        return refusal(refused)


@router.post("/conversation/message")
async def follow_up(request: Request) -> JSONResponse:
    """Another message from the asker, screened like any: an urgent one is answered with crisis help at once."""
    try:
        console = _console()
        body = await _json_body(request)
        token = _text(body, "token", 100)
        text = _text(body, "text", console.answerer.config.max_description_chars)
    except PsyllmError as refused:
        return refusal(refused)
    # Screened and answered before the store is touched: crisis help never waits on the database.
    screening = console.answerer.screener.screen(text)
    region, language = console.answerer.config.region, detect_language(text)
    reply = crisis_reply(screening, region, language, case_opened=True)
    try:
        conversation_id = await asyncio.to_thread(
            console.conversations.follow_up, token, text, screening, reply.text if reply else None
        )
    except StoreUnavailable as unavailable:
        log.error("a follow-up screened %s was NOT stored: the store is unavailable", screening.level)
        unsaved = crisis_reply(screening, region, language, case_opened=False)
        return JSONResponse(
            {"error": str(unavailable), "crisis": unsaved.text if unsaved else None},
            status_code=503, headers={"Retry-After": str(unavailable.retry_after_s)},
        )  # fmt: skip
    except PsyllmError as refused:
        return refusal(refused)
    log.info("conversation %s: follow-up screened %s", conversation_id, screening.level)
    await asyncio.to_thread(console.count_waiting)
    return JSONResponse({"screening": screening_json(screening), "crisis": reply.text if reply else None})


# Counsellors.


def _signed_in(request: Request, console: Console, changes_state: bool = False) -> Counsellor:
    cookie = request.cookies.get(COOKIE)
    counsellor = console.accounts.signed_in(cookie)
    if counsellor is None:
        raise SignInRefused("sign in first (or again: the session ended)")
    if changes_state:
        _require_json(request)
        if not console.accounts.csrf_valid(cookie, request.headers.get("x-csrf-token")):
            raise Forbidden("missing or wrong CSRF token: reload the console")
    return counsellor


@router.get("/console", response_class=HTMLResponse)
def console_page() -> HTMLResponse:
    return page(PAGES / "console.html")


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    """Exchange a counsellor's token for a session cookie; the answer carries the session's CSRF token."""
    try:
        console = _console()
        token = _text(await _json_body(request), "token", 100)
        cookie, counsellor = await asyncio.to_thread(console.accounts.sign_in, token)
        await asyncio.to_thread(console.conversations.record, counsellor, "sign-in")
    except PsyllmError as refused:
        return refusal(refused)
    response = JSONResponse(_who(console, counsellor, cookie))
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(COOKIE, cookie, max_age=SESSION_HOURS * 3600, path="/console", secure=secure,
                        httponly=True, samesite="strict")  # fmt: skip
    return response


def _who(console: Console, counsellor: Counsellor, cookie: str) -> dict[str, Any]:
    return {"name": counsellor.name, "role": counsellor.role, "csrf": console.accounts.csrf_token(cookie)}


@router.get("/console/api/me")
def me(request: Request) -> JSONResponse:
    try:
        console = _console()
        return JSONResponse(_who(console, _signed_in(request, console), request.cookies[COOKIE]))
    except PsyllmError as refused:
        return refusal(refused)


@router.post("/console/api/sign-out")
def sign_out(request: Request) -> Response:
    try:
        console = _console()
        counsellor = _signed_in(request, console, changes_state=True)
        console.accounts.sign_out(request.cookies.get(COOKIE))
        console.conversations.record(counsellor, "sign-out")
    except PsyllmError as refused:
        return refusal(refused)
    response = JSONResponse({"signed_out": counsellor.name})
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/console/api/queue")
def queue(request: Request) -> JSONResponse:
    try:
        console = _console()
        _signed_in(request, console)
        return JSONResponse(console.conversations.queue())
    except PsyllmError as refused:
        return refusal(refused)


@router.get("/console/api/conversations/{conversation_id}")
def conversation(conversation_id: int, request: Request) -> JSONResponse:
    try:
        console = _console()
        return JSONResponse(console.conversations.conversation(conversation_id, _signed_in(request, console)))
    except PsyllmError as refused:
        return refusal(refused)


@router.post("/console/api/conversations/{conversation_id}/claim")
def claim(conversation_id: int, request: Request) -> JSONResponse:
    try:
        console = _console()
        counsellor = _signed_in(request, console, changes_state=True)
        console.conversations.claim(conversation_id, counsellor)
        return JSONResponse({"claimed_by": counsellor.name})
    except PsyllmError as refused:
        return refusal(refused)


@router.post("/console/api/conversations/{conversation_id}/release")
def release(conversation_id: int, request: Request) -> JSONResponse:
    """Back to the queue: by the counsellor holding it, or by an admin when they are away."""
    try:
        console = _console()
        console.conversations.release(conversation_id, _signed_in(request, console, changes_state=True))
        return JSONResponse({"claimed_by": None})
    except PsyllmError as refused:
        return refusal(refused)


@router.post("/console/api/conversations/{conversation_id}/draft")
async def draft(conversation_id: int, request: Request) -> JSONResponse:
    """A draft reply (the model's, or the crisis reply for an urgent conversation), kept as `draft_id` for the
    reply to name, and supporting articles."""
    try:
        console = _console()
        counsellor = _signed_in(request, console, changes_state=True)
        shown = await asyncio.to_thread(console.conversations.conversation, conversation_id, counsellor)
        drafted = await draft_reply(console.answerer, shown, console.articles)
        drafted["draft_id"] = await asyncio.to_thread(
            console.conversations.save_draft, conversation_id, counsellor, drafted["text"], drafted["source"]
        )
        return JSONResponse(drafted)
    except PsyllmError as refused:
        return refusal(refused)


@router.post("/console/api/conversations/{conversation_id}/send")
async def send(conversation_id: int, request: Request) -> JSONResponse:
    """The counsellor's reply as edited: `text`, `draft_id` (the draft it started from, or null) and `seen` (the id of
    the last message the counsellor was shown, so a follow-up that came meanwhile keeps the conversation waiting)."""
    try:
        console = _console()
        counsellor = _signed_in(request, console, changes_state=True)
        body = await _json_body(request)
        text = _text(body, "text", MAX_REPLY_CHARS)
        draft_id, seen = body.get("draft_id"), body.get("seen")
        if not (draft_id is None or _whole(draft_id)) or not _whole(seen):
            raise PsyllmError("draft_id: the draft's id or null; seen: the last message's id (whole numbers)")
        level, waited_s = await asyncio.to_thread(
            console.conversations.send, conversation_id, counsellor, text, draft_id, seen
        )
        if waited_s is not None:
            console.metrics.first_reply(level, waited_s)
        await asyncio.to_thread(console.count_waiting)
        log.info("conversation %s: answered by %s", conversation_id, counsellor.name)
        return JSONResponse({"sent": True})
    except PsyllmError as refused:
        return refusal(refused)


@router.get("/console/api/audit")
def audit_trail(request: Request) -> JSONResponse:
    """The audit trail, newest first: admins only."""
    try:
        console = _console()
        counsellor = _signed_in(request, console)
        if not counsellor.admin:
            raise Forbidden("the audit trail is for admins")
        console.conversations.record(counsellor, "read-audit")
        return JSONResponse({"audit": console.conversations.audit_trail()})
    except PsyllmError as refused:
        return refusal(refused)
