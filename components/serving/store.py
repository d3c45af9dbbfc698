"""Where the service keeps what must outlast it: issued answers, ratings and urgent cases.

SQLAlchemy Core over SQLite (the default: WAL mode, `synchronous=FULL`, so every write the
service acknowledged survives a `kill -9` or a power cut) or Postgres by URL. Raw text (a
question, a rater's comment) is stored only when `store_text` is on; otherwise a row holds
what a counsellor needs to act (time, screening level and categories) and nothing a person wrote.
The tables are created and evolved by Alembic (`migrate.py`) when a store is opened.

A database that stops answering (Postgres restarted, the network gone) makes every method raise
`StoreUnavailable`, which the service answers with 503 and Retry-After; the pool pings each
connection before use, so the store recovers by itself once the database is back.
"""

import functools
import logging
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, InterfaceError, OperationalError

from components.errors import PsyllmError
from components.serving.migrate import migrate

if TYPE_CHECKING:
    from components.screening import Basis

log = logging.getLogger(__name__)
RATING_SCALES = ("helpfulness", "fluency", "relevance", "logic")
RETRY_AFTER_S = 5
ANONYMOUS_RATER = "anonymous"

metadata = MetaData()
answers = Table(
    "answers",
    metadata,
    Column("request_id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("level", String(16), nullable=False),
    Column("categories", String(200), nullable=False),
    Column("withheld", Boolean, nullable=False, default=False),
    Column("question", Text),
)
ratings = Table(
    "ratings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), ForeignKey("answers.request_id"), nullable=False),
    Column("rater_id", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    *(Column(scale, Integer, nullable=False) for scale in RATING_SCALES),
    Column("comment", Text),
    UniqueConstraint("request_id", "rater_id", name="one_rating_per_rater"),
)
cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), ForeignKey("answers.request_id"), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("categories", String(200), nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(100)),
    Column("question", Text),
    Column("basis", String(16)),  # why the message was urgent: statement or classifier (screener.Basis)
)


class UnknownRequest(PsyllmError, LookupError):
    """A rating or case refers to something this service never issued."""


class AlreadyRated(PsyllmError):
    """This rater has rated this answer already."""


class StoreUnavailable(PsyllmError):
    """The database does not answer; the caller should retry after `retry_after_s`."""

    retry_after_s = RETRY_AFTER_S

    def __init__(self) -> None:
        super().__init__(f"the store is unavailable; retry in {RETRY_AFTER_S} s")


Owner = TypeVar("Owner")
Args = ParamSpec("Args")
Result = TypeVar("Result")


def needs_database(
    method: Callable[Concatenate[Owner, Args], Result],
) -> Callable[Concatenate[Owner, Args], Result]:
    """A lost connection (or a database that does not answer) as StoreUnavailable, never a 500."""

    @functools.wraps(method)
    def guarded(owner: Owner, *args: Args.args, **kwargs: Args.kwargs) -> Result:
        try:
            return method(owner, *args, **kwargs)
        except (OperationalError, InterfaceError) as lost:
            log.warning("the store did not answer (%s)", type(lost.orig).__name__)
            raise StoreUnavailable() from lost

    return guarded


@dataclass(frozen=True)
class IssuedAnswer:
    """What is recorded when the service answers (the question only if text storage is on)."""

    request_id: str
    model_version: str
    level: str
    categories: tuple[str, ...]
    question: str | None
    basis: "Basis | None" = None  # why it is urgent, if it is


def new_request_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


def resolve_store_url(url: str, root: Path, create: bool = True) -> str:
    """The URL with a relative SQLite path made absolute against `root` (the project).

    With `create` off (verbs that read what the service wrote), a SQLite file that is not there is a
    wrong path or a service that never ran, not an empty store to create and report on.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as bad:
        raise PsyllmError(f"serve.store_url: {url!r} is not a database URL ({bad})") from bad
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    relative = not Path(parsed.database).is_absolute()
    database = (root / parsed.database).resolve() if relative else Path(parsed.database)
    if not create and parsed.database != ":memory:" and not database.is_file():
        raise PsyllmError(f"no store at {database}: the service creates it when it first starts (psyllm serve)")
    if not relative:
        return url
    database.parent.mkdir(parents=True, exist_ok=True)
    return parsed.set(database=str(database)).render_as_string(hide_password=False)


def _sqlite_durable(connection: sqlite3.Connection, _: object) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Store:
    """Answers, ratings and cases; every method is one committed transaction."""

    def __init__(self, url: str, store_text: bool) -> None:
        self.store_text = store_text
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_durable)
        try:
            migrate(self.engine)
        except OperationalError as unreachable:
            raise PsyllmError(
                f"serve.store_url: cannot open the store ({str(unreachable.orig).strip()})"
            ) from unreachable

    @needs_database
    def record_answer(self, issued: IssuedAnswer, urgent: bool) -> int | None:
        """The issued answer, and for an urgent message its open case, in one transaction: the case's id."""
        question = issued.question if self.store_text else None
        categories = ",".join(issued.categories)
        with self.engine.begin() as connection:
            connection.execute(
                insert(answers).values(
                    request_id=issued.request_id,
                    created_at=_now(),
                    model_version=issued.model_version,
                    level=issued.level,
                    categories=categories,
                    withheld=False,
                    question=question,
                )
            )
            if not urgent:
                return None
            opened = connection.execute(
                insert(cases).values(
                    request_id=issued.request_id,
                    created_at=_now(),
                    categories=categories,
                    status="open",
                    question=question,
                    basis=issued.basis,
                )
            )
            return int(opened.inserted_primary_key[0])

    @needs_database
    def mark_withheld(self, request_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(answers).where(answers.c.request_id == request_id).values(withheld=True))

    @needs_database
    def add_rating(self, request_id: str, scores: dict[str, int], rater_id: str | None, comment: str | None) -> int:
        """Store one rating; refuses an unknown request id and a second rating by the same rater."""
        rater = rater_id or ANONYMOUS_RATER
        with self.engine.begin() as connection:
            issued = select(answers.c.request_id).where(answers.c.request_id == request_id)
            if connection.execute(issued).first() is None:
                raise UnknownRequest(f"request_id {request_id!r} was not issued by this service")
            try:
                with connection.begin_nested():
                    inserted = connection.execute(
                        insert(ratings).values(
                            request_id=request_id,
                            rater_id=rater,
                            created_at=_now(),
                            comment=comment if self.store_text else None,
                            **{scale: scores[scale] for scale in RATING_SCALES},
                        )
                    )
            except IntegrityError as duplicate:
                raise AlreadyRated(f"rater {rater!r} has already rated request {request_id}") from duplicate
            return int(inserted.inserted_primary_key[0])

    @needs_database
    def ratings(self) -> list[dict[str, Any]]:
        """Every rating with its answer's model version, oldest first (for export and reports)."""
        query = (
            select(ratings, answers.c.model_version, answers.c.level)
            .join(answers, ratings.c.request_id == answers.c.request_id)
            .order_by(ratings.c.id)
        )
        with self.engine.connect() as connection:
            return [_plain(row._mapping) for row in connection.execute(query)]

    @needs_database
    def cases(self, status: str | None = None) -> list[dict[str, Any]]:
        """Urgent cases, those from an explicit statement first, then newest first; only `status` ones when given."""
        query = select(cases).order_by(case((cases.c.basis == "statement", 0), else_=1), cases.c.id.desc())
        if status is not None:
            query = query.where(cases.c.status == status)
        with self.engine.connect() as connection:
            return [_plain(row._mapping) for row in connection.execute(query)]

    @needs_database
    def resolve_case(self, case_id: int, resolved_by: str) -> dict[str, Any]:
        """Mark a case resolved (once; resolving again keeps the first resolution)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.status == "open")
                .values(status="resolved", resolved_at=_now(), resolved_by=resolved_by)
            )
            row = connection.execute(select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise UnknownRequest(f"there is no case {case_id}")
        return _plain(row._mapping)

    def reachable(self) -> bool:
        """Whether the database answers now (readiness)."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except (OperationalError, InterfaceError):
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON-ready values (times as ISO 8601 in UTC)."""
    return {key: _iso(value) if isinstance(value, datetime) else value for key, value in dict(mapping).items()}


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC; SQLite hands back naive times, which were written in UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
