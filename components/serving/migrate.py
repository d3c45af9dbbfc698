"""Bring the service's store to its newest schema with Alembic, on SQLite or Postgres.

Every table the store holds (answers, ratings and cases, rating campaigns, the counsellor console)
is created and evolved here. Each revision in `migrations/versions/` is applied once, in order, and
recorded in the store's `alembic_version` table; opening a `Store` applies any it lacks, so a
deployment upgrades in place by starting the new service (or with `psyllm conversations migrate`).
A new column or table is a new revision, never an edit of an old one.
"""

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> "Config":
    # Alembic announces each plugin it loads at INFO when first imported: quiet it before that.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> str:
    """Apply every revision the store lacks; the revision it is at afterwards."""
    config = _config()
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return str(MigrationContext.configure(connection).get_current_revision())


def head() -> str:
    """The newest revision there is."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config()).get_current_head())
