"""The console as the service holds it: conversations, accounts, articles and metrics, built once at start.

A question asked on the page becomes a conversation (`asked`): the answer's events pass through
unchanged, except that the first gains `conversation`, the link's token, and once the answer has
ended the reply as shown (crisis help, the model's text, a withheld notice) is stored with it. With
the store down the person still gets their answer, with no link. Message text older than
`serve.retention_days` is purged at start and then every hour.
"""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from components.console.accounts import Accounts
from components.console.conversations import Conversations, purge_text
from components.console.metrics import ConsoleMetrics
from components.console.retrieval import ArticleIndex
from components.language import detect_language
from components.serving.contract import shown_text
from components.serving.store import StoreUnavailable

if TYPE_CHECKING:  # the model's libraries load in the service's worker, not where routes are declared
    from components.serving.answering import Answerer

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600


@dataclass
class Console:
    answerer: "Answerer"
    conversations: Conversations
    accounts: Accounts
    articles: ArticleIndex
    metrics: ConsoleMetrics
    retention_days: float
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Purge now and hourly (a daemon thread), and set the waiting gauge."""
        threading.Thread(target=self._purge_hourly, name="console-purge", daemon=True).start()
        self.count_waiting()

    def stop(self) -> None:
        self._stop.set()

    def count_waiting(self) -> None:
        """Refresh the waiting gauge; best effort, so a store that just went away never fails the action before it."""
        try:
            self.metrics.waiting(self.conversations.waiting_by_level())
        except StoreUnavailable:
            log.warning("the waiting gauge was not refreshed (the store is unavailable)")

    async def asked(self, events: AsyncIterator[dict[str, Any]], message: str) -> AsyncIterator[dict[str, Any]]:
        first = await anext(events)
        screening = first["screening"]
        try:
            conversation_id, token = await asyncio.to_thread(
                self.conversations.open, message, screening["level"], tuple(screening["categories"]),
                detect_language(message), first["request_id"], screening["basis"],
            )  # fmt: skip
        except StoreUnavailable:
            log.error("request %s: no conversation opened (the store is unavailable)", first["request_id"])
            yield first
            async for event in events:
                yield event
            return
        await asyncio.to_thread(self.count_waiting)
        yield {**first, "conversation": token}
        shown = []
        try:
            async for event in events:
                shown.append(event)
                yield event
        finally:  # also when the asker leaves mid-stream: the conversation keeps what they were shown
            try:
                await asyncio.to_thread(self.conversations.add_service_reply, conversation_id, shown_text(shown))
            except StoreUnavailable:
                log.error("conversation %s: the reply shown was not stored (the store is unavailable)", conversation_id)

    def _purge_hourly(self) -> None:
        while True:
            try:
                emptied = purge_text(self.conversations.engine, self.retention_days)
                if emptied:
                    log.info(
                        "retention: emptied the text of %d messages older than %g days", emptied, self.retention_days
                    )
            except Exception as failed:  # the thread must outlive any one failure
                log.warning("retention: purge failed (%s); trying again in an hour", type(failed).__name__)
            if self._stop.wait(PURGE_EVERY_S):
                return
