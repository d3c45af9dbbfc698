"""Rating campaigns in the service's store: fixed answers from two models, rated blind by named raters.

Live traffic rates each answer once, so raters' agreement is undefined there. A campaign fixes a
question set and both models' answers once (`psyllm campaign create`, components/campaign.py);
each rater then works through every item on the `/rate` page, sees the two answers as A and B,
rates each on the paper's four scales and says which is better (or a tie).

Each rater has a link with a secret token (stored only as its SHA-256); the token says who rates,
so no rater can rate as another. The order of items and which model is shown as A are fixed per
rater and item from a hash (a rater who stops resumes where they were, and sees no item twice),
and within a rater's list the first model is A on every other item, so both orders occur.
Model names never reach the page. The answers are model text and the questions come from a
question file, so campaign text is stored whatever `store_text` says.
"""

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from components.errors import PsyllmError
from components.serving.store import RATING_SCALES, AlreadyRated, UnknownRequest, needs_database

SIDES = ("first", "second")

metadata = MetaData()
campaigns = Table(
    "campaigns",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("first_model", String(200), nullable=False),
    Column("second_model", String(200), nullable=False),
)
campaign_items = Table(
    "campaign_items",
    metadata,
    Column("campaign", String(100), primary_key=True),
    Column("item_id", String(100), primary_key=True),
    Column("question", Text, nullable=False),
    Column("level", String(16), nullable=False),  # the question's screening level (the graver of the two models')
    Column("first_answer", Text, nullable=False),
    Column("second_answer", Text, nullable=False),
    ForeignKeyConstraint(["campaign"], ["campaigns.name"]),
)
campaign_raters = Table(
    "campaign_raters",
    metadata,
    Column("campaign", String(100), primary_key=True),
    Column("rater_id", String(100), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    ForeignKeyConstraint(["campaign"], ["campaigns.name"]),
)
campaign_judgements = Table(
    "campaign_judgements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign", String(100), nullable=False),
    Column("item_id", String(100), nullable=False),
    Column("rater_id", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("first_shown_as", String(1), nullable=False),  # "A" or "B": which side the first model was on
    Column("preferred", String(8), nullable=False),  # "first", "second" or "tie"
    *(Column(f"{side}_{scale}", Integer, nullable=False) for side in SIDES for scale in RATING_SCALES),
    ForeignKeyConstraint(["campaign", "item_id"], ["campaign_items.campaign", "campaign_items.item_id"]),
    UniqueConstraint("campaign", "item_id", "rater_id", name="one_judgement_per_rater"),
)


class UnknownRater(PsyllmError, LookupError):
    """A rating link whose token belongs to no rater of any campaign."""


class InvalidJudgement(PsyllmError, ValueError):
    """A judgement with a score out of range, a missing scale or an unknown preference."""


@dataclass(frozen=True)
class CampaignItem:
    """One question, its screening level, and the two models' answers, in the campaign's model order."""

    item_id: str
    question: str
    level: str
    first_answer: str
    second_answer: str


@dataclass(frozen=True)
class Rater:
    campaign: str
    rater_id: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rater_order(campaign: str, rater_id: str, item_ids: Sequence[str]) -> list[tuple[str, bool]]:
    """The rater's items in the order they are shown, each with whether the first model is shown as A."""
    start = int(_sha256(f"{campaign}\0{rater_id}")[:8], 16) % 2
    ordered = sorted(item_ids, key=lambda item: _sha256(f"{campaign}\0{rater_id}\0{item}"))
    return [(item, (position + start) % 2 == 0) for position, item in enumerate(ordered)]


def check_scores(scores: object, side: str) -> dict[str, int]:
    """One answer's four 1-5 scores, or InvalidJudgement naming what is wrong."""
    if not isinstance(scores, Mapping):
        raise InvalidJudgement(f"{side}: expected the four scores {', '.join(RATING_SCALES)}")
    checked = {}
    for scale in RATING_SCALES:
        value = scores.get(scale)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
            raise InvalidJudgement(f"{side}.{scale}: must be a whole number from 1 to 5")
        checked[scale] = value
    return checked


class CampaignStore:
    """Campaigns in the database behind `engine` (an opened `Store`'s, so its tables exist); every method is one
    transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @needs_database
    def create(
        self, name: str, models: tuple[str, str], items: Sequence[CampaignItem], raters: Sequence[str]
    ) -> dict[str, str]:
        """Store a campaign; returns each rater's token (shown once: only its hash is kept)."""
        tokens = {rater: secrets.token_urlsafe(24) for rater in raters}
        with self.engine.begin() as connection:
            exists = connection.execute(select(campaigns.c.name).where(campaigns.c.name == name)).first()
            if exists:
                raise PsyllmError(f"campaign {name!r} exists already; choose another --name")
            connection.execute(
                insert(campaigns).values(
                    name=name, created_at=datetime.now(UTC), first_model=models[0], second_model=models[1]
                )
            )
            connection.execute(insert(campaign_items), [{"campaign": name, **vars(item)} for item in items])
            connection.execute(
                insert(campaign_raters),
                [{"campaign": name, "rater_id": rater, "token_sha256": _sha256(tokens[rater])} for rater in raters],
            )
        return tokens

    def _rater(self, connection: Connection, token: str) -> Rater:
        found = connection.execute(
            select(campaign_raters.c.campaign, campaign_raters.c.rater_id).where(
                campaign_raters.c.token_sha256 == _sha256(token)
            )
        ).first()
        if found is None:
            raise UnknownRater("this rating link is not valid; ask for your campaign's link")
        return Rater(found.campaign, found.rater_id)

    def _done(self, connection: Connection, rater: Rater) -> set[str]:
        judged = select(campaign_judgements.c.item_id).where(
            campaign_judgements.c.campaign == rater.campaign, campaign_judgements.c.rater_id == rater.rater_id
        )
        return set(connection.execute(judged).scalars())

    def _order(self, connection: Connection, rater: Rater) -> list[tuple[str, bool]]:
        item_ids = connection.execute(
            select(campaign_items.c.item_id).where(campaign_items.c.campaign == rater.campaign)
        ).scalars()
        return rater_order(rater.campaign, rater.rater_id, list(item_ids))

    @needs_database
    def next_item(self, token: str) -> dict[str, Any]:
        """The rater's next unrated item as shown (answers as A and B, no model names) and their progress."""
        with self.engine.connect() as connection:
            rater = self._rater(connection, token)
            order, done = self._order(connection, rater), self._done(connection, rater)
            progress = {"done": len(done), "total": len(order)}
            waiting = [(item, first_is_a) for item, first_is_a in order if item not in done]
            if not waiting:
                return {"rater_id": rater.rater_id, "progress": progress, "item": None}
            item_id, first_is_a = waiting[0]
            row = connection.execute(
                select(campaign_items).where(
                    campaign_items.c.campaign == rater.campaign, campaign_items.c.item_id == item_id
                )
            ).one()
        a, b = (row.first_answer, row.second_answer) if first_is_a else (row.second_answer, row.first_answer)
        shown = {"item_id": item_id, "question": row.question, "A": a, "B": b}
        return {"rater_id": rater.rater_id, "progress": progress, "item": shown}

    @needs_database
    def judge(self, token: str, item_id: str, scores: Mapping[str, object], preference: object) -> dict[str, int]:
        """Record one rater's judgement of one item (once); returns their progress."""
        if preference not in ("A", "B", "tie"):
            raise InvalidJudgement("preference: must be A, B or tie")
        shown = {side: check_scores(scores.get(side), side) for side in ("A", "B")}
        with self.engine.begin() as connection:
            rater = self._rater(connection, token)
            order = dict(self._order(connection, rater))
            if item_id not in order:
                raise UnknownRequest(f"item {item_id!r} is not in campaign {rater.campaign!r}")
            first_side, second_side = ("A", "B") if order[item_id] else ("B", "A")
            preferred = {first_side: "first", second_side: "second", "tie": "tie"}[str(preference)]
            values = {f"first_{scale}": shown[first_side][scale] for scale in RATING_SCALES}
            values |= {f"second_{scale}": shown[second_side][scale] for scale in RATING_SCALES}
            try:
                with connection.begin_nested():
                    judgement = {"campaign": rater.campaign, "item_id": item_id, "rater_id": rater.rater_id}
                    judgement |= {"created_at": datetime.now(UTC), "first_shown_as": first_side, "preferred": preferred}
                    connection.execute(insert(campaign_judgements).values(**judgement, **values))
            except IntegrityError as repeated:
                raise AlreadyRated(f"rater {rater.rater_id!r} has already rated item {item_id!r}") from repeated
            return {"done": len(self._done(connection, rater)), "total": len(order)}

    @needs_database
    def items(self, name: str) -> list[CampaignItem]:
        """A campaign's questions and answers (for the feedback export)."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(campaign_items).where(campaign_items.c.campaign == name))
            return [
                CampaignItem(**{key: value for key, value in row._mapping.items() if key != "campaign"}) for row in rows
            ]

    @needs_database
    def campaign(self, name: str) -> dict[str, Any]:
        """A campaign's models and every judgement, for reports."""
        with self.engine.connect() as connection:
            found = connection.execute(select(campaigns).where(campaigns.c.name == name)).first()
            if found is None:
                raise UnknownRequest(f"there is no campaign {name!r}")
            judgements = connection.execute(
                select(campaign_judgements)
                .where(campaign_judgements.c.campaign == name)
                .order_by(campaign_judgements.c.id)
            )
            return {
                "name": name,
                "models": (found.first_model, found.second_model),
                "judgements": [dict(row._mapping) for row in judgements],
            }

    @needs_database
    def names(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(campaigns.c.name).order_by(campaigns.c.created_at)).scalars())

    @needs_database
    def progress(self, name: str) -> dict[str, dict[str, int]]:
        """Per rater: items judged and items in the campaign."""
        with self.engine.connect() as connection:
            total = connection.execute(
                select(func.count()).select_from(campaign_items).where(campaign_items.c.campaign == name)
            ).scalar_one()
            if not total:
                raise UnknownRequest(f"there is no campaign {name!r}")
            raters = connection.execute(
                select(campaign_raters.c.rater_id).where(campaign_raters.c.campaign == name)
            ).scalars()
            return {
                rater: {"done": len(self._done(connection, Rater(name, rater))), "total": total} for rater in raters
            }
