"""Loading question–answer data from the formats Psy-LLM trains on, into one record type.

`load_qa(path)` detects the format from the file:
- PsyQA JSON (`.json`): a list of questions, each with `answers: [{answer_text, ...}]`;
  one pair per answer.
- CounselChat CSV (`.csv`): one row per therapist answer; HTML is stripped.
- Plain JSON Lines (`.jsonl`): `question`, optional `description`, `answer`, and optional
  `question_id` (otherwise derived from the question text, so repeats group together).
- Counselling dialogues in JSON Lines (CPsyCoun): a record with `text` (turns separated by blank
  lines, each opening with its speaker) or `utterances` (one turn each), and `case_id` or
  `source_path` naming it. Every counsellor turn that answers a client turn is one pair: the
  client's turn is the question, the client's opening turn (what they came with) the description.
  Narration in full-width brackets, such as （一段时间后）, is dropped; a paragraph without a speaker
  continues the turn before it.
Every problem names the file and the record or line it is in. An answer that is present
but blank (some public sets have unanswered rows) is skipped with a warning.
"""

import csv
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from components.errors import PsyllmError
from components.jsonl import read_json, read_jsonl
from components.language import detect_language
from components.text import normalize_text, strip_html

log = logging.getLogger(__name__)

_COUNSELCHAT_COLUMNS = ("questionID", "questionTitle", "questionText", "answerText")
_CSV_FIELD_LIMIT = 16 * 1024 * 1024  # scraped answers can exceed csv's 128 KiB default


@dataclass(frozen=True)
class QAPair:
    """One answer to one question. Several pairs may share a question_id."""

    question_id: str
    question: str
    description: str
    answer: str
    language: str
    source: str

    def as_record(self) -> dict[str, str]:
        return asdict(self)


def load_qa(path: Path) -> list[QAPair]:
    """All question–answer pairs in `path`, format detected from its suffix and content."""
    if not path.is_file():
        raise PsyllmError(f"{path}: Q&A file not found")
    readers = {".json": _psyqa, ".csv": _counselchat, ".jsonl": _jsonl}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise PsyllmError(f"{path}: unknown Q&A format; expected one of {', '.join(readers)}")
    try:
        return list(reader(path))
    except csv.Error as bad:
        raise PsyllmError(f"{path}: malformed CSV ({bad})") from bad
    except UnicodeDecodeError as bad:
        raise PsyllmError(f"{path}: not valid UTF-8 near byte {bad.start}") from bad


def qa_pair(question_id: str, question: str, description: str, answer: str, source: str) -> QAPair:
    """A normalised pair with its language identified, as every reader makes it."""
    question, description, answer = (normalize_text(part) for part in (question, description, answer))
    return QAPair(
        question_id=question_id,
        question=question,
        description=description,
        answer=answer,
        language=detect_language(f"{question}\n{description}\n{answer}"),
        source=source,
    )


def _text_field(record: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise PsyllmError(f"{where}: field {key!r} must be a non-empty string")
    return value


def _answer_or_skip(value: object, key: str, where: str) -> str | None:
    """The answer text, or None (with a warning) when it is blank; anything else is an error."""
    if not isinstance(value, str):
        raise PsyllmError(f"{where}: field {key!r} must be a string")
    if not value.strip():
        log.warning("%s: blank %s skipped", where, key)
        return None
    return value


def _psyqa(path: Path) -> Iterator[QAPair]:
    questions = read_json(path)
    if not isinstance(questions, list):
        raise PsyllmError(f"{path}: expected a PsyQA JSON list of questions")
    source = f"psyqa:{path.stem}"
    for index, item in enumerate(questions):
        where = f"{path}: record {index}"
        if not isinstance(item, dict) or "questionID" not in item or not isinstance(item.get("answers"), list):
            raise PsyllmError(f"{where}: not a PsyQA question (needs questionID and an answers list)")
        question = _text_field(item, "question", where)
        description = _text_field(item, "description", where, required=False)
        for answer_index, answer in enumerate(item["answers"]):
            answer_where = f"{where}, answer {answer_index}"
            if not isinstance(answer, dict):
                raise PsyllmError(f"{answer_where}: expected an object with answer_text")
            text = _answer_or_skip(answer.get("answer_text"), "answer_text", answer_where)
            if text is not None:
                yield qa_pair(str(item["questionID"]), question, description, text, source)


@dataclass(frozen=True)
class CounselChatRow:
    """One CounselChat answer row, HTML stripped, before normalisation and language identification."""

    question_id: str
    question: str
    description: str
    answer: str
    split: str  # the CSV's own split column ("" in exports without one)


def counselchat_rows(path: Path) -> Iterator[CounselChatRow]:
    """Every answered row of a CounselChat CSV; blank answers are skipped with a warning."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in _COUNSELCHAT_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise PsyllmError(f"{path}: not a CounselChat CSV, missing columns {', '.join(missing)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:
                raise PsyllmError(f"{where}: row has more fields than the header")
            question_id = (row["questionID"] or "").strip()
            if not question_id:
                raise PsyllmError(f"{where}: empty questionID")
            answer = _answer_or_skip(strip_html(row["answerText"] or ""), "answerText", where)
            if answer is None:
                continue
            title = strip_html(row["questionTitle"] or "")
            body = strip_html(row["questionText"] or "")
            yield CounselChatRow(question_id, title or body, body if title else "", answer, row.get("split") or "")


def counselchat_source(path: Path) -> str:
    """The `source` of the pairs `load_qa` reads from a CounselChat CSV."""
    return f"counselchat:{path.stem}"


def _counselchat(path: Path) -> Iterator[QAPair]:
    source = counselchat_source(path)
    for row in counselchat_rows(path):
        yield qa_pair(row.question_id, row.question, row.description, row.answer, source)


_CLIENTS = ("来访者", "求助者")
_COUNSELLORS = ("心理咨询师", "支持者")
_SPEAKER = re.compile(rf"^({'|'.join(_CLIENTS + _COUNSELLORS)})[：:]\s*")
_NARRATION = re.compile(r"^（[^（）]*）$")


def _dialogue_turns(paragraphs: list[str], where: str) -> list[tuple[str, str]]:
    """(speaker, text) per turn, speaker "client" or "counsellor"; narration dropped."""
    turns: list[tuple[str, str]] = []
    for paragraph in (part.strip() for part in paragraphs):
        if not paragraph or _NARRATION.match(paragraph):
            continue
        speaker = _SPEAKER.match(paragraph)
        if speaker:
            role = "client" if speaker.group(1) in _CLIENTS else "counsellor"
            turns.append((role, paragraph[speaker.end() :]))
        elif turns:
            turns[-1] = (turns[-1][0], f"{turns[-1][1]}\n{paragraph}")
        else:
            raise PsyllmError(
                f"{where}: the dialogue does not open with a speaker ({', '.join(_CLIENTS + _COUNSELLORS)})"
            )
    return turns


def _dialogue_pairs(record: dict[str, Any], source: str, where: str) -> Iterator[QAPair]:
    if isinstance(record.get("utterances"), list) and all(isinstance(u, str) for u in record["utterances"]):
        paragraphs = record["utterances"]
    elif isinstance(record.get("text"), str):
        paragraphs = re.split(r"\n\s*\n", record["text"].replace("\r", ""))
    else:
        raise PsyllmError(f"{where}: a dialogue needs `text` (a string) or `utterances` (a list of strings)")
    name = record.get("case_id", record.get("source_path"))
    if name is None:
        raise PsyllmError(f"{where}: a dialogue needs `case_id` or `source_path` to name it")
    turns = _dialogue_turns(paragraphs, where)
    opening = next((text for role, text in turns if role == "client"), "")
    for index in range(1, len(turns)):
        (asker, question), (answerer, answer) = turns[index - 1], turns[index]
        if asker == "client" and answerer == "counsellor" and question.strip() and answer.strip():
            description = "" if question == opening else opening
            yield qa_pair(f"{name}#{index}", question, description, answer, source)


def _jsonl(path: Path) -> Iterator[QAPair]:
    source = f"jsonl:{path.stem}"
    for line_number, record in read_jsonl(path):
        where = f"{path}:{line_number}"
        if "question" not in record and ("text" in record or "utterances" in record):
            yield from _dialogue_pairs(record, source, where)
            continue
        question = _text_field(record, "question", where)
        if "answer" not in record:
            raise PsyllmError(f"{where}: field 'answer' is missing")
        answer = _answer_or_skip(record["answer"], "answer", where)
        if answer is None:
            continue
        description = _text_field(record, "description", where, required=False)
        question_id = record.get("question_id")
        if question_id is None:
            question_id = hashlib.sha1(normalize_text(question).encode()).hexdigest()[:12]
        yield qa_pair(str(question_id), question, description, answer, source)
