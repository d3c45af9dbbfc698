"""Why a conversation is urgent (an explicit statement or the classifier alone), so the queue puts statements first.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("conversations", sa.Column("urgent_basis", sa.String(16)))


def downgrade() -> None:
    op.drop_column("conversations", "urgent_basis")
