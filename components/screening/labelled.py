"""The project's written screening messages, and the record type real labelled messages share.

The project's set (`data/screening/{en,zh}.jsonl`) carries its train/test split in
every record. The split was drawn once, by paraphrase group, before anything was tuned, and
is frozen: a data test pins a digest of the test records, so the test split cannot drift.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from components.errors import PsyllmError
from components.jsonl import read_jsonl

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
Level = Literal["none", "elevated", "urgent"]
Category = Literal["suicide", "self_harm", "harm_to_others", "abuse_danger"]
LEVELS: tuple[Level, ...] = get_args(Level)
CATEGORIES: tuple[Category, ...] = get_args(Category)
SPLITS = ("train", "test")
_FIELDS = {"id", "group", "text", "label", "categories", "kind", "split"}


@dataclass(frozen=True)
class LabelledMessage:
    """One message with the level and categories a triage reviewer would give it."""

    id: str
    group: str
    text: str
    label: Level
    categories: tuple[Category, ...]
    kind: str
    split: str


def check_record(record: dict, where: str, fields: set[str]) -> None:
    """The fields, level, categories and split every labelled record (written or real) must have."""
    if set(record) != fields:
        raise PsyllmError(f"{where}: expected the fields {sorted(fields)}, got {sorted(record)}")
    if record["label"] not in LEVELS:
        raise PsyllmError(f"{where}: label must be one of {', '.join(LEVELS)}, got {record['label']!r}")
    unknown = set(record["categories"]) - set(CATEGORIES)
    if unknown:
        raise PsyllmError(f"{where}: unknown categories {sorted(unknown)}; allowed: {', '.join(CATEGORIES)}")
    if (record["label"] == "none") != (not record["categories"]):
        raise PsyllmError(f"{where}: categories must be empty exactly when the label is 'none'")
    if record["split"] not in SPLITS:
        raise PsyllmError(f"{where}: split must be one of {', '.join(SPLITS)}, got {record['split']!r}")


def _check(record: dict, where: str) -> None:
    check_record(record, where, _FIELDS)
    if not isinstance(record["text"], str) or not record["text"].strip():
        raise PsyllmError(f"{where}: text must be a non-empty string")


def load_labelled(path: Path) -> list[LabelledMessage]:
    """Read one language's labelled set (`en.jsonl`, `zh.jsonl`), checking every record."""
    messages = []
    for line_number, record in read_jsonl(path):
        _check(record, f"{path}:{line_number}")
        messages.append(
            LabelledMessage(
                id=record["id"],
                group=record["group"],
                text=record["text"],
                label=record["label"],
                categories=tuple(record["categories"]),
                kind=record["kind"],
                split=record["split"],
            )
        )
    if not messages:
        raise PsyllmError(f"{path}: no labelled messages")
    return messages


def split_digest(messages: list[LabelledMessage], split: str) -> str:
    """sha256 over one split's ids, texts and labels: what the frozen-split test pins."""
    chosen = sorted((m.id, m.text, m.label, list(m.categories)) for m in messages if m.split == split)
    return hashlib.sha256(json.dumps(chosen, ensure_ascii=False).encode("utf-8")).hexdigest()
