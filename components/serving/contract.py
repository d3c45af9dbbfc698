"""What callers of the service send and get back: a checked request, the screening and the answer as
JSON, and the refusals that are not the caller's fault.

Kept apart from the model (components/serving/answering.py) so that the HTTP surface imports
without torch or transformers: BentoML's process manager imports service.py only to read its
configuration, and `psyllm serve` only resolves what to serve, so neither pays for loading a
model's libraries (seconds per start, which a restart after a crash waits for).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from components.config import ServeConfig
from components.errors import PsyllmError
from components.screening import Screening
from components.screening.screener import InvalidMessage, check_message


class InvalidRequest(PsyllmError, ValueError):
    """A request the service cannot answer as given; the message says which field and why."""


class QueueFull(PsyllmError):
    """Too many requests are waiting; the caller should retry after `retry_after_s`."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the service is busy; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class AnswerRequest:
    question: str
    description: str
    max_new_tokens: int


def check_request(
    question: object, description: object, max_new_tokens: object, config: ServeConfig, default_new_tokens: int
) -> AnswerRequest:
    """The request with defaults filled in (`default_new_tokens`: the model's), or InvalidRequest naming the field."""
    try:
        question = check_message(question)
    except InvalidMessage as bad:
        raise InvalidRequest(f"question: {bad}") from bad
    if len(question) > config.max_question_chars:
        raise InvalidRequest(
            f"question: too long ({len(question):,} characters; the limit is {config.max_question_chars:,})"
        )
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise InvalidRequest(f"description: must be text, not {type(description).__name__}")
    if len(description) > config.max_description_chars:
        raise InvalidRequest(
            f"description: too long ({len(description):,} characters; the limit is {config.max_description_chars:,})"
        )
    if max_new_tokens is None:
        max_new_tokens = min(default_new_tokens, config.max_new_tokens)
    whole = isinstance(max_new_tokens, int) and not isinstance(max_new_tokens, bool)
    if not whole or not 1 <= max_new_tokens <= config.max_new_tokens:
        raise InvalidRequest(f"max_new_tokens: must be a whole number from 1 to {config.max_new_tokens}")
    return AnswerRequest(question, description, max_new_tokens)


def screening_json(screening: Screening) -> dict[str, Any]:
    """The screening object as the API returns it."""
    return {
        "urgent": screening.urgent,
        "level": screening.level,
        "categories": list(screening.categories),
        "reasons": list(screening.reasons),
        "basis": screening.basis,
    }


def shown_text(events: list[dict[str, Any]]) -> str:
    """What the person was shown: crisis help, the model's text, a withheld-answer notice, each a paragraph."""

    def text_of(kind: str) -> str:
        return "".join(event["text"] for event in events if event["type"] == kind).strip()

    return "\n\n".join(block for block in (text_of("crisis"), text_of("text"), text_of("withheld")) if block)


async def collect(answer_events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """An answer's events as one object (with the conversation's link token when the console opened one)."""
    events = [event async for event in answer_events]
    first = events[0]
    whole = {
        "answer": shown_text(events),
        "screening": first["screening"],
        "model_version": first["model_version"],
        "request_id": first["request_id"],
        "withheld": any(event["type"] == "withheld" for event in events),
    }
    return whole | ({"conversation": first["conversation"]} if "conversation" in first else {})
