"""`psyllm campaign create`: one question set answered once by two models, stored for blind rating.

The question file is JSON Lines with an `id` and a `question` (and an optional `description`) per
line, so the real benchmark's `questions.jsonl` serves as it is. Each model answers as the service
would (components/serving/answering.py: screening first, the crisis reply for an urgent message),
because what raters judge should be what people get. Everything is checked before any model
loads: the name, the raters, both models (a registry URI or a model folder, resolved to the
version they name now, since aliases move) and every question line.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components.errors import PsyllmError
from components.jsonl import read_jsonl
from components.screening.labelled import LEVELS, Level
from components.serving.campaign_store import CampaignItem, CampaignStore
from components.serving.contract import AnswerRequest, InvalidRequest, check_request
from components.serving.runtime import load_answerer, served_folders, source_folder
from components.serving.settings import serve_config
from components.serving.store import Store
from components.version_folder import model_version

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_QUESTIONS = 1000


@dataclass(frozen=True)
class CampaignQuestion:
    item_id: str
    question: str
    description: str

    def shown(self) -> str:
        """What raters read: the question, and its description as a second paragraph."""
        return f"{self.question}\n\n{self.description}" if self.description else self.question


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise PsyllmError(
            f"{kind} {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def read_questions(path: Path) -> list[CampaignQuestion]:
    """Every line's id and question, checked: unique ids, text the service would accept."""
    config = serve_config(Path.cwd())
    questions: list[CampaignQuestion] = []
    seen: set[str] = set()
    for line, record in read_jsonl(path):
        item_id = record.get("id")
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or not str(item_id).strip():
            raise PsyllmError(f"{path}:{line}: each line needs an `id` (text or a number)")
        item_id = str(item_id).strip()[:100]
        if item_id in seen:
            raise PsyllmError(f"{path}:{line}: id {item_id!r} appears twice")
        try:
            request = check_request(
                record.get("question"), record.get("description"), None, config, config.max_new_tokens
            )
        except InvalidRequest as bad:
            raise PsyllmError(f"{path}:{line}: {bad}") from None
        seen.add(item_id)
        questions.append(CampaignQuestion(item_id, request.question, request.description))
    if not questions:
        raise PsyllmError(f"{path}: no questions")
    if len(questions) > MAX_QUESTIONS:
        raise PsyllmError(f"{path}: {len(questions):,} questions; a campaign holds at most {MAX_QUESTIONS:,}")
    return questions


def _answers(
    source: Path, questions: Sequence[CampaignQuestion], max_new_tokens: int | None
) -> list[tuple[str, Level]]:
    """One model's answers to every question, as the service gives them (with no store: nothing recorded),
    each with the question's screening level."""
    root = Path.cwd()
    model, screener = served_folders(source, root)
    answerer = load_answerer(model, screener, serve_config(root), store=None)
    try:
        limit = max_new_tokens or answerer.generation.max_new_tokens
        requests = [AnswerRequest(question.question, question.description, limit) for question in questions]
        return [(answer["answer"], answer["screening"]["level"]) for answer in answerer.answer_all(requests)]
    finally:
        answerer.close()


def create_campaign(
    store: Store,
    name: str,
    questions_file: Path,
    models: Sequence[str],
    raters: Sequence[str],
    max_new_tokens: int | None = None,
) -> dict[str, str]:
    """Generate both models' answers and store the campaign; returns each rater's secret token."""
    campaigns = CampaignStore(store.engine)
    check_name("campaign", name)
    if name in campaigns.names():
        raise PsyllmError(f"campaign {name!r} exists already; choose another --name")
    if len(raters) == 0 or len(set(raters)) != len(raters):
        raise PsyllmError("--raters: give one or more distinct rater names, comma-separated")
    for rater in raters:
        check_name("rater", rater)
    if len(models) != 2:
        raise PsyllmError(f"--models: a blind comparison needs exactly two models, got {len(models)}")
    questions = read_questions(questions_file)
    sources = [source_folder(model, Path.cwd()) for model in models]
    versions = [model_version(served_folders(source, Path.cwd())[0]) for source in sources]
    if versions[0] == versions[1]:
        raise PsyllmError(f"--models: both name {versions[0]}; compare two different versions")
    answers = []
    for model, source in zip(models, sources, strict=True):
        log.info("campaign %s: %s answers %d questions", name, model, len(questions))
        answers.append(_answers(source, questions, max_new_tokens))
    items = [
        CampaignItem(
            question.item_id, question.shown(), max(first[1], second[1], key=LEVELS.index), first[0], second[0]
        )
        for question, first, second in zip(questions, *answers, strict=True)
    ]
    return campaigns.create(name, (versions[0], versions[1]), items, raters)
