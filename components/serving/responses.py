"""How the service answers outside its model endpoints: pages under one content policy, and refusals
as one JSON `{"error": ...}` with the status that says why, never a trace."""

from pathlib import Path

from fastapi.responses import HTMLResponse, JSONResponse

from components.console.accounts import Forbidden, SignInRefused
from components.console.conversations import NotYours, UnknownConversation, UnsafeDraft
from components.console.keys import ConsoleOff
from components.errors import PsyllmError
from components.serving.campaign_store import UnknownRater
from components.serving.contract import QueueFull
from components.serving.store import AlreadyRated, StoreUnavailable, UnknownRequest

# The page's own inline script and style only: an injected <script> would not run even if shown.
PAGE_POLICY = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'"


def page(html: Path) -> HTMLResponse:
    """A page, read once per request (they are small), under the content policy."""
    return HTMLResponse(html.read_text(encoding="utf-8"), headers={"Content-Security-Policy": PAGE_POLICY})


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def refusal(refused: PsyllmError) -> JSONResponse:
    """The HTTP answer to a request the service refuses."""
    if isinstance(refused, QueueFull | StoreUnavailable):
        return error(503, str(refused), {"Retry-After": str(refused.retry_after_s)})
    if isinstance(refused, SignInRefused):
        return error(401, str(refused))
    if isinstance(refused, UnknownRater | Forbidden):
        return error(403, str(refused))
    if isinstance(refused, UnknownRequest | UnknownConversation | ConsoleOff):
        return error(404, str(refused))
    if isinstance(refused, AlreadyRated | NotYours | UnsafeDraft):
        return error(409, str(refused))
    return error(400, str(refused))
