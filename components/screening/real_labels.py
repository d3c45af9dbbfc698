"""Hand labels for real messages (ids only), their frozen train/test split, and their texts.

The labels (`data/screening/real_labels.jsonl`, criteria in that folder's README) name a
message of `real_sources` by id; its text is read from `../shared/data` when needed and never
stored in the project. Near-duplicate messages share a `group`, so they never straddle the
split. The split was drawn once by `draw_split`, before anything was tuned on these labels, and
is stored in every record; a data test re-draws it and pins the test records' digest.
"""

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from components.errors import PsyllmError
from components.jsonl import read_jsonl
from components.near_dup import NearDuplicateIndex
from components.screening.labelled import LEVELS, Category, LabelledMessage, Level, check_record
from components.screening.real_sources import SOURCE_LANGUAGE, SOURCES, RealMessage, Source, read_source

_FIELDS = {"id", "source", "group", "label", "categories", "split", "note"}
TEST_FRACTION = 0.3
SPLIT_SALT = "screening-real-v1:"
NEAR_DUPLICATE = 0.8


@dataclass(frozen=True)
class RealLabel:
    """A triage reviewer's level and categories for one real message, known by id."""

    id: str
    source: Source
    group: str
    label: Level
    categories: tuple[Category, ...]
    split: str
    note: str


def _check(record: dict, where: str) -> None:
    check_record(record, where, _FIELDS)
    if record["source"] not in SOURCES:
        raise PsyllmError(f"{where}: source must be one of {', '.join(SOURCES)}, got {record['source']!r}")


def load_real_labels(path: Path) -> list[RealLabel]:
    """Every labelled real message, checked; ids are unique."""
    labels: list[RealLabel] = []
    for line_number, record in read_jsonl(path):
        _check(record, f"{path}:{line_number}")
        labels.append(
            RealLabel(
                id=record["id"],
                source=record["source"],
                group=record["group"],
                label=record["label"],
                categories=tuple(record["categories"]),
                split=record["split"],
                note=record["note"],
            )
        )
    repeated = {id_ for id_, count in Counter(label.id for label in labels).items() if count > 1}
    if repeated:
        raise PsyllmError(f"{path}: ids labelled twice: {sorted(repeated)[:5]}")
    return labels


def real_digest(labels: list[RealLabel], split: str) -> str:
    """sha256 over one split's ids, sources, labels and categories: what the frozen-split test pins."""
    chosen = sorted((r.id, r.source, r.label, list(r.categories)) for r in labels if r.split == split)
    return hashlib.sha256(json.dumps(chosen, ensure_ascii=False).encode("utf-8")).hexdigest()


def near_duplicate_groups(messages: list[RealMessage]) -> dict[str, str]:
    """Each message's group: the id of the first message it is a near-duplicate of (or its own)."""
    index = NearDuplicateIndex(threshold=NEAR_DUPLICATE, permutations=128)
    group: dict[str, str] = {}
    for message in messages:
        earlier = index.add(message.id, message.text)
        group[message.id] = group[earlier[0]] if earlier else message.id
    return group


def draw_split(labels: list[RealLabel]) -> dict[str, str]:
    """The split for every id: per (source, level) stratum, `TEST_FRACTION` of its groups go to test.

    A group's stratum is its most severe level. Groups are ordered by a salted hash of their
    name, so the draw depends on nothing but the labels and groups.
    """
    severity = {level: rank for rank, level in enumerate(LEVELS)}
    group_level: dict[tuple[Source, str], Level] = {}
    for label in labels:
        key = (label.source, label.group)
        if key not in group_level or severity[label.label] > severity[group_level[key]]:
            group_level[key] = label.label
    strata: dict[tuple[Source, Level], list[str]] = defaultdict(list)
    for (source, group), level in group_level.items():
        strata[(source, level)].append(group)
    test_groups: set[tuple[Source, str]] = set()
    for (source, _), groups in strata.items():
        ordered = sorted(groups, key=lambda g: hashlib.sha256(f"{SPLIT_SALT}{g}".encode()).hexdigest())
        test_groups |= {(source, group) for group in ordered[: int(TEST_FRACTION * len(ordered) + 0.5)]}
    return {label.id: "test" if (label.source, label.group) in test_groups else "train" for label in labels}


def real_messages(labels: list[RealLabel], shared_data: Path) -> list[LabelledMessage]:
    """The labelled messages with their texts from the shared data, as the screener's records.

    `kind` names the source (`real:counselchat`, ...), so reports can tell sources apart.
    """
    texts: dict[str, str] = {}
    for source in {label.source for label in labels}:
        texts |= {message.id: message.text for message in read_source(shared_data, source)}
    missing = [label.id for label in labels if label.id not in texts]
    if missing:
        raise PsyllmError(f"{len(missing)} labelled real messages are not in {shared_data}, e.g. {missing[:3]}")
    return [
        LabelledMessage(
            id=label.id,
            group=f"{label.source}:{label.group}",
            text=texts[label.id],
            label=label.label,
            categories=label.categories,
            kind=f"real:{label.source}",
            split=label.split,
        )
        for label in labels
    ]


def by_language(messages: list[LabelledMessage]) -> dict[str, list[LabelledMessage]]:
    """Real messages keyed by their source's language."""
    grouped: dict[str, list[LabelledMessage]] = defaultdict(list)
    for message in messages:
        grouped[SOURCE_LANGUAGE[message.kind.removeprefix("real:")]].append(message)  # type: ignore[index]
    return dict(grouped)
