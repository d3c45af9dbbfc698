"""Conversations between a person who asked and the counsellors: the queue, claims, replies and the audit.

A person's question opens a conversation; its private link carries a random token of which only the
SHA-256 is stored. Every asker message keeps its screening level, and the conversation the gravest
one, so the queue shows urgent conversations first (those with an explicit statement before the
classifier's flags, which are far less often urgent) and then those waiting longest. A counsellor
claims a conversation before answering it, so two people never answer the same one; whoever holds
the claim replies. Every counsellor action is one row of the audit trail, written in the same
transaction as the action. Message text is sealed (components/console/keys.py) before it is stored.
"""

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, or_, select, update

from components.console.accounts import Counsellor
from components.console.keys import ConsoleKeys, sha256
from components.console.schema import LEVELS, audit, aware, console_sessions, conversations, messages, utc_now
from components.errors import PsyllmError
from components.screening import Basis, Screening
from components.serving.store import needs_database


class UnknownConversation(PsyllmError, LookupError):
    """A link token or conversation id that belongs to no conversation."""


class NotYours(PsyllmError, PermissionError):
    """Another counsellor holds the claim (or no one does, and replying needs one)."""


def graver(level: str, other: str) -> str:
    return max(level, other, key=LEVELS.index)


def firmer(basis: Basis | None, other: Basis | None) -> Basis | None:
    """An urgent statement outweighs an urgent classifier flag, which outweighs no urgency."""
    return max(basis, other, key=(None, "classifier", "statement").index)


class UnsafeDraft(PsyllmError):
    """A reply built on model text for a conversation that is now urgent, or on a draft that is not its own."""


ANSWERED_SHOWN = 50  # the queue's answered section: the most recent only


class Conversations:
    """The console's work over a migrated store (components/serving/migrate.py)."""

    def __init__(self, engine: Engine, keys: ConsoleKeys) -> None:
        self.engine, self.keys = engine, keys

    # The person who asked.

    @needs_database
    def open(
        self,
        text: str,
        level: str,
        categories: tuple[str, ...],
        language: str,
        request_id: str,
        basis: Basis | None = None,
    ) -> tuple[int, str]:
        """A new conversation holding the asker's first message (`basis`: why it is urgent, if it is): its id and
        the link's token."""
        token = secrets.token_urlsafe(24)
        with self.engine.begin() as connection:
            now = utc_now()
            opened = connection.execute(
                insert(conversations).values(
                    token_sha256=sha256(token), created_at=now, level=level, categories=",".join(categories),
                    language=language, awaiting_since=now, urgent_basis=basis,
                )
            )  # fmt: skip
            conversation_id = int(opened.inserted_primary_key[0])
            self._add(connection, conversation_id, "asker", text, level=level, request_id=request_id)
        return conversation_id, token

    @needs_database
    def add_service_reply(self, conversation_id: int, text: str) -> None:
        """The service's immediate reply (the crisis reply or the model's answer), as the asker saw it."""
        with self.engine.begin() as connection:
            self._add(connection, conversation_id, "service", text)

    @needs_database
    def follow_up(self, token: str, text: str, screening: Screening, reply: str | None) -> int:
        """Another message from the asker, with the crisis reply it was given (if any), in one transaction; the
        conversation waits for a person again, as grave as its gravest message. Its id."""
        with self.engine.begin() as connection:
            row = self._by_token(connection, token, lock=True)  # two follow-ups at once must not lose a level
            known = [category for category in row.categories.split(",") if category]
            connection.execute(
                update(conversations)
                .where(conversations.c.id == row.id)
                .values(
                    level=graver(row.level, screening.level),
                    urgent_basis=firmer(row.urgent_basis, screening.basis),
                    categories=",".join(dict.fromkeys([*known, *screening.categories])),
                    awaiting_since=row.awaiting_since or utc_now(),
                )
            )
            self._add(connection, row.id, "asker", text, level=screening.level)
            if reply is not None:
                self._add(connection, row.id, "service", reply)
        return int(row.id)

    @needs_database
    def for_asker(self, token: str) -> dict[str, Any]:
        """What the asker's page shows: the messages (no counsellor names) and whether a person replied."""
        with self.engine.connect() as connection:
            row = self._by_token(connection, token)
            shown = [
                {"author": message["author"], "at": message["at"], "text": message["text"]}
                for message in self._messages(connection, row.id)
                if message["author"] != "draft"  # a counsellor's drafts are theirs until sent
            ]
        return {"messages": shown, "human_replied": row.first_human_reply_at is not None}

    # Counsellors.

    @needs_database
    def queue(self, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        """Unclaimed, claimed (both awaiting a person) and answered conversations; gravest, longest waiting first."""
        now = now or utc_now()
        with self.engine.connect() as connection:
            waiting = select(conversations).where(conversations.c.awaiting_since.is_not(None))
            answered = (
                select(conversations)
                .where(conversations.c.awaiting_since.is_(None))
                .order_by(conversations.c.first_human_reply_at.desc())
                .limit(ANSWERED_SHOWN)
            )
            rows = [*connection.execute(waiting), *connection.execute(answered)]
        sections: dict[str, list[dict[str, Any]]] = {"unclaimed": [], "claimed": [], "answered": []}
        for row in rows:
            waiting = row.awaiting_since is not None
            section = "answered" if not waiting else "claimed" if row.claimed_by else "unclaimed"
            since = aware(row.awaiting_since) if waiting else None
            sections[section].append({
                "id": row.id, "level": row.level, "basis": row.urgent_basis,
                "categories": [c for c in row.categories.split(",") if c], "language": row.language,
                "claimed_by": row.claimed_by, "created_at": aware(row.created_at).isoformat(),
                "waiting_s": round((now - since).total_seconds()) if since else None,
            })  # fmt: skip
        for section in sections.values():
            section.sort(key=lambda item: (
                -LEVELS.index(item["level"]), item["basis"] != "statement", -(item["waiting_s"] or 0), -item["id"]
            ))  # fmt: skip
        return sections

    @needs_database
    def waiting_by_level(self) -> dict[str, int]:
        """How many conversations wait for a person, per level (the /metrics gauge)."""
        query = (
            select(conversations.c.level, func.count())
            .where(conversations.c.awaiting_since.is_not(None))
            .group_by(conversations.c.level)
        )
        with self.engine.connect() as connection:
            counted = dict(connection.execute(query).all())
        return {level: int(counted.get(level, 0)) for level in LEVELS}

    @needs_database
    def conversation(self, conversation_id: int, reader: Counsellor) -> dict[str, Any]:
        """The whole conversation for a counsellor; reading it is audited."""
        with self.engine.begin() as connection:
            row = self._by_id(connection, conversation_id)
            self._audit(connection, reader, "read", conversation_id)
            return {
                "id": row.id, "level": row.level, "basis": row.urgent_basis,
                "categories": [c for c in row.categories.split(",") if c], "language": row.language,
                "claimed_by": row.claimed_by, "awaiting": row.awaiting_since is not None,
                "messages": [m for m in self._messages(connection, row.id) if m["author"] != "draft"],
            }  # fmt: skip

    @needs_database
    def claim(self, conversation_id: int, counsellor: Counsellor) -> None:
        """Take the conversation; refused when another counsellor holds it (claiming it again is fine)."""
        with self.engine.begin() as connection:
            self._by_id(connection, conversation_id, lock=True)
            claimed = connection.execute(
                update(conversations)
                .where(
                    conversations.c.id == conversation_id,
                    or_(conversations.c.claimed_by.is_(None), conversations.c.claimed_by == counsellor.name),
                )
                .values(claimed_by=counsellor.name, claimed_at=utc_now())
            )
            if claimed.rowcount == 0:
                holder = self._by_id(connection, conversation_id).claimed_by
                raise NotYours(f"conversation {conversation_id} is claimed by {holder}")
            self._audit(connection, counsellor, "claim", conversation_id)

    @needs_database
    def release(self, conversation_id: int, counsellor: Counsellor) -> None:
        """Give the conversation back to the queue: its holder, or an admin (when the holder is away)."""
        with self.engine.begin() as connection:
            row = self._by_id(connection, conversation_id, lock=True)
            if row.claimed_by is not None and row.claimed_by != counsellor.name and not counsellor.admin:
                raise NotYours(
                    f"conversation {conversation_id} is claimed by {row.claimed_by}; an admin can release it"
                )
            connection.execute(
                update(conversations).where(conversations.c.id == row.id).values(claimed_by=None, claimed_at=None)
            )
            self._audit(connection, counsellor, "release", row.id)

    @needs_database
    def save_draft(self, conversation_id: int, counsellor: Counsellor, text: str, source: str) -> int:
        """Keep a draft the console made (sealed, never shown to the asker): its id, which `send` names."""
        with self.engine.begin() as connection:
            self._by_id(connection, conversation_id)
            draft_id = self._add(connection, conversation_id, "draft", text, counsellor=counsellor.name,
                                 draft_source=source)  # fmt: skip
            self._audit(connection, counsellor, "draft", conversation_id, draft_id)
        return draft_id

    @needs_database
    def send(
        self, conversation_id: int, counsellor: Counsellor, text: str, draft_id: int | None, seen_message_id: int
    ) -> tuple[str, float | None]:
        """The counsellor's reply, with the draft it started from (`draft_id`, from `save_draft`; None when written
        from scratch). Asker messages after `seen_message_id` (the last one the counsellor was shown) keep the
        conversation waiting. The conversation's level and, for its first human reply, how long the asker waited.
        """
        with self.engine.begin() as connection:
            row = self._by_id(connection, conversation_id, lock=True)
            if row.claimed_by != counsellor.name:
                holder = f"claimed by {row.claimed_by}" if row.claimed_by else "not claimed"
                raise NotYours(f"conversation {conversation_id} is {holder}: claim it before replying")
            draft, source = self._draft(connection, row, draft_id)
            message_id = self._add(connection, row.id, "counsellor", text, counsellor=counsellor.name,
                                   draft=draft, draft_source=source)  # fmt: skip
            unseen = connection.execute(
                select(func.min(messages.c.created_at)).where(
                    messages.c.conversation_id == row.id, messages.c.author == "asker",
                    messages.c.id > seen_message_id,
                )
            ).scalar()  # fmt: skip
            now = utc_now()
            connection.execute(update(conversations).where(conversations.c.id == row.id).values(awaiting_since=unseen))
            first = connection.execute(
                update(conversations)
                .where(conversations.c.id == row.id, conversations.c.first_human_reply_at.is_(None))
                .values(first_human_reply_at=now)
            )
            self._audit(connection, counsellor, "send", row.id, message_id)
        return str(row.level), (now - aware(row.created_at)).total_seconds() if first.rowcount == 1 else None

    def _draft(self, connection: Connection, conversation: Row[Any], draft_id: int | None) -> tuple[str | None, str]:
        """The named draft's text and source, checked: this conversation's own, and no model text once it is urgent."""
        if draft_id is None:
            return None, "none"
        row = connection.execute(
            select(messages).where(
                messages.c.id == draft_id, messages.c.conversation_id == conversation.id, messages.c.author == "draft"
            )
        ).first()
        if row is None:
            raise UnsafeDraft(f"draft {draft_id} was not made for conversation {conversation.id}")
        if row.draft_source == "model" and conversation.level == "urgent":
            raise UnsafeDraft(
                f"conversation {conversation.id} is urgent now, and this reply started from model text: "
                "draft again (an urgent conversation's draft is the crisis reply) or write your own"
            )
        return (self.keys.open(row.body) if row.body is not None else None), str(row.draft_source)

    @needs_database
    def audit_trail(self, limit: int = 500) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(audit).order_by(audit.c.id.desc()).limit(limit)).all()
        return [{**row._mapping, "at": aware(row.at).isoformat()} for row in rows]

    @needs_database
    def record(self, counsellor: Counsellor, action: str) -> None:
        """An action outside any conversation (sign-in, sign-out, reading the audit trail)."""
        with self.engine.begin() as connection:
            self._audit(connection, counsellor, action, None)

    # Export.

    @needs_database
    def sent_answers(self) -> list[dict[str, Any]]:
        """Each counsellor reply with the asker's messages before it and its draft, and the conversation's level."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(conversations.c.id, conversations.c.level)).all()
            found = []
            for row in rows:
                asked: list[str] = []
                for message in self._messages(connection, row.id):
                    if message["author"] == "asker" and message["text"] is not None:
                        asked.append(message["text"])
                    elif message["author"] == "counsellor" and asked and message["text"]:
                        found.append({"message_id": message["id"], "level": row.level, "question": "\n".join(asked),
                                      "answer": message["text"], "draft": message["draft"],
                                      "draft_source": message["draft_source"]})  # fmt: skip
        return found

    # Shared.

    def _add(self, connection: Connection, conversation_id: int, author: str, text: str, **columns: str | None) -> int:
        if columns.get("draft") is not None:
            columns["draft"] = self.keys.seal(str(columns["draft"]))
        added = connection.execute(
            insert(messages).values(
                conversation_id=conversation_id,
                created_at=utc_now(),
                author=author,
                body=self.keys.seal(text),
                **columns,
            )
        )
        return int(added.inserted_primary_key[0])

    def _messages(self, connection: Connection, conversation_id: int) -> list[dict[str, Any]]:
        query = select(messages).where(messages.c.conversation_id == conversation_id).order_by(messages.c.id)
        return [
            {
                "id": row.id, "author": row.author, "counsellor": row.counsellor, "level": row.level,
                "at": aware(row.created_at).isoformat(),
                "text": self.keys.open(row.body) if row.body is not None else None,
                "draft": self.keys.open(row.draft) if row.draft is not None else None, "draft_source": row.draft_source,
            }
            for row in connection.execute(query)
        ]  # fmt: skip

    @staticmethod
    def _by_token(connection: Connection, token: str, lock: bool = False) -> Row[Any]:
        query = select(conversations).where(conversations.c.token_sha256 == sha256(token))
        row = connection.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise UnknownConversation("that conversation link is not valid (check that it was copied whole)")
        return row

    @staticmethod
    def _by_id(connection: Connection, conversation_id: int, lock: bool = False) -> Row[Any]:
        """The conversation; `lock`: held until the transaction ends (Postgres; SQLite has one writer anyway)."""
        if not 0 < conversation_id < 2**31:
            raise UnknownConversation(f"there is no conversation {conversation_id}")
        query = select(conversations).where(conversations.c.id == conversation_id)
        row = connection.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise UnknownConversation(f"there is no conversation {conversation_id}")
        return row

    @staticmethod
    def _audit(connection: Connection, counsellor: Counsellor, action: str, conversation_id: int | None,
               message_id: int | None = None) -> None:  # fmt: skip
        connection.execute(insert(audit).values(at=utc_now(), counsellor=counsellor.name, action=action,
                                                conversation_id=conversation_id, message_id=message_id))  # fmt: skip


@needs_database
def purge_text(engine: Engine, older_than_days: float) -> int:
    """Delete the text of messages older than the cut-off (their metadata stays), and sessions that expired
    before it: how many messages were emptied. Needs no key, so a scheduled job can run it."""
    cutoff = utc_now() - timedelta(days=older_than_days)
    with engine.begin() as connection:
        emptied = connection.execute(
            update(messages)
            .where(messages.c.created_at < cutoff, or_(messages.c.body.is_not(None), messages.c.draft.is_not(None)))
            .values(body=None, draft=None)
        )
        connection.execute(delete(console_sessions).where(console_sessions.c.expires_at < cutoff))
    return int(emptied.rowcount)
