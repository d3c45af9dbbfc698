"""Hand labels for real messages (ids only), their frozen train/test split, and their texts.

The labels (`data/screening/real_labels.jsonl`, criteria in that folder's README) name a
message of `real_sources` by id; its text is read from `../shared/data` when needed and never
stored in the project. Near-duplicate messages share a `group`, so they never straddle the
split. Labels come in rounds (`round`: 1, 2, ...): each round's split was drawn once by
`draw_split`, before anything was tuned on that round's labels, and is stored in every record; a
data test re-draws it and pins each round's test digest. A later round never moves an earlier
round's message: its groups and splits are drawn as if the later rounds did not exist.
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

_FIELDS = {"id", "source", "group", "label", "categories", "split", "note", "round"}
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
    round: int


def _check(record: dict, where: str) -> None:
    check_record(record, where, _FIELDS)
    if record["source"] not in SOURCES:
        raise PsyllmError(f"{where}: source must be one of {', '.join(SOURCES)}, got {record['source']!r}")
    if not isinstance(record["round"], int) or isinstance(record["round"], bool) or record["round"] < 1:
        raise PsyllmError(f"{where}: round must be a whole number from 1, got {record['round']!r}")


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
                round=record["round"],
            )
        )
    repeated = {id_ for id_, count in Counter(label.id for label in labels).items() if count > 1}
    if repeated:
        raise PsyllmError(f"{path}: ids labelled twice: {sorted(repeated)[:5]}")
    return labels


def real_digest(labels: list[RealLabel], split: str, round_: int) -> str:
    """sha256 over one round's split: ids, sources, labels and categories (what the frozen-split test pins)."""
    chosen = sorted(
        (r.id, r.source, r.label, list(r.categories)) for r in labels if r.split == split and r.round == round_
    )
    return hashlib.sha256(json.dumps(chosen, ensure_ascii=False).encode("utf-8")).hexdigest()


def near_duplicate_groups(rounds: list[list[RealMessage]]) -> dict[str, str]:
    """Each message's group: that of the first message it nearly duplicates (or its own id).

    `rounds` holds one source's messages round by round, each in file order. A message looks only
    at messages before it, so a later round can join an earlier round's group but never regroup it.
    """
    index = NearDuplicateIndex(threshold=NEAR_DUPLICATE, permutations=128)
    group: dict[str, str] = {}
    for message in (message for messages in rounds for message in messages):
        earlier = index.add(message.id, message.text)
        group[message.id] = group[earlier[0]] if earlier else message.id
    return group


def draw_split(labels: list[RealLabel]) -> dict[str, str]:
    """The split for every id: per (round, source, level) stratum, `TEST_FRACTION` of its groups go to test.

    A group belongs to the round of its first message, and its stratum is the most severe level
    among that round's messages in it; a later message that joins it shares its split. Groups are
    ordered by a salted hash of their name, so the draw depends on nothing but the labels and groups.
    """
    severity = {level: rank for rank, level in enumerate(LEVELS)}
    group_round: dict[tuple[Source, str], int] = {}
    for label in labels:
        key = (label.source, label.group)
        group_round[key] = min(label.round, group_round.get(key, label.round))
    group_level: dict[tuple[Source, str], Level] = {}
    for label in labels:
        key = (label.source, label.group)
        if label.round == group_round[key] and (
            key not in group_level or severity[label.label] > severity[group_level[key]]
        ):
            group_level[key] = label.label
    strata: dict[tuple[int, Source, Level], list[str]] = defaultdict(list)
    for (source, group), level in group_level.items():
        strata[(group_round[(source, group)], source, level)].append(group)
    test_groups: set[tuple[Source, str]] = set()
    for (_, source, _), groups in strata.items():
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
