"""The counsellor console: counsellors, their sessions, conversations, messages and the audit trail.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "counsellors",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        _when("created_at", nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("counsellor", sa.String(100), sa.ForeignKey("counsellors.name"), nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("ended_at"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        _when("created_at", nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("categories", sa.String(200), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("claimed_by", sa.String(100), sa.ForeignKey("counsellors.name")),
        _when("claimed_at"),
        _when("awaiting_since"),
        _when("first_human_reply_at"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
        _when("created_at", nullable=False),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("counsellor", sa.String(100), sa.ForeignKey("counsellors.name")),
        sa.Column("level", sa.String(16)),
        sa.Column("request_id", sa.String(32)),
        sa.Column("body", sa.Text),
        sa.Column("draft", sa.Text),
        sa.Column("draft_source", sa.String(16)),
    )
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _when("at", nullable=False),
        sa.Column("counsellor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.Integer),
        sa.Column("message_id", sa.Integer),
    )


def downgrade() -> None:
    for table in ("audit", "messages", "conversations", "console_sessions", "counsellors"):
        op.drop_table(table)
