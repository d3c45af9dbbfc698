"""The console's tables, as the queries see them; `migrations/` creates and evolves them (Alembic).

Message text (`body`, `draft`) is stored sealed (components/console/keys.py) and set to NULL by the
retention purge, which keeps every other column: who answered what, when, and how fast.
"""

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text

LEVELS = ("none", "elevated", "urgent")  # graver last
ROLES = ("counsellor", "admin")

metadata = MetaData()
counsellors = Table(
    "counsellors",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("counsellor", String(100), ForeignKey("counsellors.name"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)
conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("level", String(16), nullable=False),  # the gravest level of any of the asker's messages
    Column("urgent_basis", String(16)),  # statement if any urgent message stated it, else classifier (screener.Basis)
    Column("categories", String(200), nullable=False),
    Column("language", String(8), nullable=False),
    Column("claimed_by", String(100), ForeignKey("counsellors.name")),
    Column("claimed_at", DateTime(timezone=True)),
    Column("awaiting_since", DateTime(timezone=True)),  # the asker's first message no person has answered yet
    Column("first_human_reply_at", DateTime(timezone=True)),
)
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("author", String(16), nullable=False),  # asker, service (the immediate reply) or counsellor
    Column("counsellor", String(100), ForeignKey("counsellors.name")),
    Column("level", String(16)),  # an asker message's screening level
    Column("request_id", String(32)),  # the answer this message was asked with (answers.request_id)
    Column("body", Text),  # sealed; NULL once purged
    Column("draft", Text),  # sealed: what the counsellor started from
    Column("draft_source", String(16)),  # model, crisis_reply or none (written from scratch)
)
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("counsellor", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("conversation_id", Integer),
    Column("message_id", Integer),  # for `send`: the message, which holds what was sent and its draft
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive times, which were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
