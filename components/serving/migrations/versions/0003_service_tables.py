"""The service's own tables (answers, ratings, cases, rating campaigns) under Alembic, and each case's basis.

Stores made before this revision created these tables outside Alembic, so each is created only
where it is missing, and `cases.basis` (why the message was urgent: statement or classifier) is
added to an existing `cases` table that lacks it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

RATING_SCALES = ("helpfulness", "fluency", "relevance", "logic")
SIDES = ("first", "second")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tables() -> dict[str, tuple]:
    """Each table as this revision defines it, in an order that respects the foreign keys."""
    return {
        "answers": (
            sa.Column("request_id", sa.String(32), primary_key=True),
            _when("created_at", nullable=False),
            sa.Column("model_version", sa.String(200), nullable=False),
            sa.Column("level", sa.String(16), nullable=False),
            sa.Column("categories", sa.String(200), nullable=False),
            sa.Column("withheld", sa.Boolean, nullable=False, default=False),
            sa.Column("question", sa.Text),
        ),
        "ratings": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("request_id", sa.String(32), sa.ForeignKey("answers.request_id"), nullable=False),
            sa.Column("rater_id", sa.String(100), nullable=False),
            _when("created_at", nullable=False),
            *(sa.Column(scale, sa.Integer, nullable=False) for scale in RATING_SCALES),
            sa.Column("comment", sa.Text),
            sa.UniqueConstraint("request_id", "rater_id", name="one_rating_per_rater"),
        ),
        "cases": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("request_id", sa.String(32), sa.ForeignKey("answers.request_id"), nullable=False, unique=True),
            _when("created_at", nullable=False),
            sa.Column("categories", sa.String(200), nullable=False),
            sa.Column("status", sa.String(16), nullable=False, default="open"),
            _when("resolved_at"),
            sa.Column("resolved_by", sa.String(100)),
            sa.Column("question", sa.Text),
            sa.Column("basis", sa.String(16)),
        ),
        "campaigns": (
            sa.Column("name", sa.String(100), primary_key=True),
            _when("created_at", nullable=False),
            sa.Column("first_model", sa.String(200), nullable=False),
            sa.Column("second_model", sa.String(200), nullable=False),
        ),
        "campaign_items": (
            sa.Column("campaign", sa.String(100), primary_key=True),
            sa.Column("item_id", sa.String(100), primary_key=True),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("level", sa.String(16), nullable=False),
            sa.Column("first_answer", sa.Text, nullable=False),
            sa.Column("second_answer", sa.Text, nullable=False),
            sa.ForeignKeyConstraint(["campaign"], ["campaigns.name"]),
        ),
        "campaign_raters": (
            sa.Column("campaign", sa.String(100), primary_key=True),
            sa.Column("rater_id", sa.String(100), primary_key=True),
            sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
            sa.ForeignKeyConstraint(["campaign"], ["campaigns.name"]),
        ),
        "campaign_judgements": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("campaign", sa.String(100), nullable=False),
            sa.Column("item_id", sa.String(100), nullable=False),
            sa.Column("rater_id", sa.String(100), nullable=False),
            _when("created_at", nullable=False),
            sa.Column("first_shown_as", sa.String(1), nullable=False),
            sa.Column("preferred", sa.String(8), nullable=False),
            *(sa.Column(f"{side}_{scale}", sa.Integer, nullable=False) for side in SIDES for scale in RATING_SCALES),
            sa.ForeignKeyConstraint(["campaign", "item_id"], ["campaign_items.campaign", "campaign_items.item_id"]),
            sa.UniqueConstraint("campaign", "item_id", "rater_id", name="one_judgement_per_rater"),
        ),
    }


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, columns in _tables().items():
        if name not in existing:
            op.create_table(name, *columns)
    if "cases" in existing and "basis" not in {column["name"] for column in inspector.get_columns("cases")}:
        op.add_column("cases", sa.Column("basis", sa.String(16)))


def downgrade() -> None:
    op.drop_column("cases", "basis")
