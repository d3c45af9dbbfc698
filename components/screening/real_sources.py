"""Real help-seekers' messages from the shared public data sets, each under a stable id.

The project stores labels for these messages by id only; the texts stay in `../shared/data`.
What a message is, per source:
- CounselChat (`20200325_counsel_chat.csv`, en): the question's title and text. The CSV reuses
  some question ids for other questions and files some questions twice, so a message is one
  distinct title+text; its id is `cc-<questionID>` for the first text seen under that id and
  `cc-<questionID>.<n>` for the n-th (n >= 2) distinct text filed under the same id.
- PsyQA example (`PsyQA_example.json`, zh): question and description, `psyqa-<questionID>`.
- CPsyCounD (`CPsyCounD.jsonl`, zh): the client's opening turn, `cpsycound-<case_id>`.
- CPsyCounE (`CPsyCounE.jsonl`, zh): the help-seeker's opening turn, `cpsycoune-<topic>-<case_no>`.
"""

import csv
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from components.errors import PsyllmError
from components.public_data import COUNSELCHAT_FILE, CPSYCOUND_FILE, CPSYCOUNE_FILE, PSYQA_FILE
from components.screening.labelled import Language

Source = Literal["counselchat", "psyqa", "cpsycound", "cpsycoune"]
SOURCES: tuple[Source, ...] = get_args(Source)
SOURCE_LANGUAGE: dict[Source, Language] = {"counselchat": "en", "psyqa": "zh", "cpsycound": "zh", "cpsycoune": "zh"}
SOURCE_FILES: dict[Source, str] = {
    "counselchat": COUNSELCHAT_FILE,
    "psyqa": PSYQA_FILE,
    "cpsycound": CPSYCOUND_FILE,
    "cpsycoune": CPSYCOUNE_FILE,
}
_TURN_BREAK = re.compile(r"\r?\n\s*\r?\n")
_SPEAKER = re.compile(r"^(?:来访者|求助者)[:：]\s*")


@dataclass(frozen=True)
class RealMessage:
    """One real message: its id, where it comes from, its language and its text."""

    id: str
    source: Source
    language: Language
    text: str


def source_path(shared_data: Path, source: Source) -> Path:
    return shared_data / SOURCE_FILES[source]


def _counselchat(path: Path) -> Iterator[tuple[str, str]]:
    csv.field_size_limit(sys.maxsize)
    seen_texts: set[str] = set()
    texts_per_id: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = f"{row['questionTitle']}\n{row['questionText']}".strip()
            if text in seen_texts:
                continue
            seen_texts.add(text)
            question_id = row["questionID"].strip()
            count = texts_per_id[question_id] = texts_per_id.get(question_id, 0) + 1
            yield (f"cc-{question_id}" if count == 1 else f"cc-{question_id}.{count}"), text


def _psyqa(path: Path) -> Iterator[tuple[str, str]]:
    for item in json.loads(path.read_text(encoding="utf-8")):
        yield f"psyqa-{item['questionID']}", f"{item['question']}\n{item.get('description') or ''}".strip()


def _opening_turn(turns: list[str]) -> str:
    return _SPEAKER.sub("", turns[0].strip()).strip()


def _cpsycound(path: Path) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            turns = [turn for turn in _TURN_BREAK.split(record["text"].strip()) if turn.strip()]
            yield f"cpsycound-{record['case_id']}", _opening_turn(turns)


def _cpsycoune(path: Path) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            yield f"cpsycoune-{record['topic']}-{record['case_no']}", _opening_turn(record["utterances"])


_READERS = {"counselchat": _counselchat, "psyqa": _psyqa, "cpsycound": _cpsycound, "cpsycoune": _cpsycoune}


def read_source(shared_data: Path, source: Source) -> list[RealMessage]:
    """Every message of one source, in file order; a clear error when its file is missing or malformed."""
    path = source_path(shared_data, source)
    if not path.is_file():
        raise PsyllmError(f"{path}: not found (the shared public data lives in ../shared/data)")
    try:
        return [
            RealMessage(id_, source, SOURCE_LANGUAGE[source], text)
            for id_, text in _READERS[source](path)
            if text.strip()
        ]
    except (KeyError, IndexError, ValueError, csv.Error) as error:
        raise PsyllmError(f"{path}: not the expected {source} format ({error!r})") from error
