"""Leak-free train / validation / test splits of question–answer pairs.

A split is decided per group of questions, not per pair. Questions join one group when
they share an answer (exactly or nearly: CounselChat therapists paste the same answer
under many questions), the whole question (its text with its description), or a description.
The turns of one dialogue share its opening turn as their description, so a dialogue stays in one
split, while a stock reply such as "好的，我会试试的。" joins nothing: as a question it is asked
in the context of a different opening each time. Each group goes to one split, chosen by a
salted hash of its smallest question key, so the split is deterministic and no answer text
can sit in two splits.
"""

import hashlib
from collections import Counter
from typing import Any

from components.config import PrepareConfig
from components.near_dup import NearDuplicateIndex
from components.privacy import scrub_pair
from components.qa_data import QAPair

SPLITS = ("train", "validation", "test")
_HASH_BUCKETS = 10_000


class _Groups:
    """Union–find over question keys."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self._parent.setdefault(key, key)
        root = key
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[key] != root:
            self._parent[key], key = root, self._parent[key]
        return root

    def union(self, first: str, second: str) -> None:
        a, b = self.find(first), self.find(second)
        if a != b:
            self._parent[max(a, b)] = min(a, b)


def question_key(pair: QAPair) -> str:
    """Question ids are unique within a source, not across sources."""
    return f"{pair.source}#{pair.question_id}"


def _exact(text: str) -> str:
    return hashlib.sha256("".join(text.lower().split()).encode()).hexdigest()


def split_pairs(pairs: list[QAPair], config: PrepareConfig) -> tuple[dict[str, list[QAPair]], dict[str, Any]]:
    """Scrub, keep the configured languages, group leaking questions, and assign splits."""
    kept = [scrub_pair(pair) for pair in pairs if pair.language in config.languages]
    dropped_languages = Counter(pair.language for pair in pairs if pair.language not in config.languages)
    groups = _Groups()
    first_key_by_text: dict[str, str] = {}
    index = NearDuplicateIndex(config.near_duplicate_threshold, config.minhash_permutations)
    for number, pair in enumerate(kept):
        key = question_key(pair)
        groups.find(key)
        prompt = f"{pair.question}\n{pair.description}".strip()
        for text in filter(None, (pair.answer, prompt, pair.description)):
            other = first_key_by_text.setdefault(_exact(text), key)
            groups.union(key, other)
        for match in index.add(str(number), pair.answer):
            groups.union(key, question_key(kept[int(match)]))
    split_of_root = {root: _split_for(root, config) for root in {groups.find(question_key(p)) for p in kept}}
    splits: dict[str, list[QAPair]] = {name: [] for name in SPLITS}
    for pair in kept:
        splits[split_of_root[groups.find(question_key(pair))]].append(pair)
    group_sizes = Counter(groups.find(question_key(pair)) for pair in kept)
    questions_per_group = Counter(groups.find(key) for key in {question_key(pair) for pair in kept})
    stats = {
        "pairs_in": len(pairs),
        "dropped_by_language": dict(sorted(dropped_languages.items())),
        "question_groups": len(split_of_root),
        "groups_of_several_questions": sum(1 for count in questions_per_group.values() if count > 1),
        "largest_group_pairs": max(group_sizes.values(), default=0),
        "splits": {name: _split_stats(members) for name, members in splits.items()},
    }
    return splits, stats


def _split_for(root: str, config: PrepareConfig) -> str:
    digest = hashlib.sha256(f"{config.split_salt}\0{root}".encode()).hexdigest()
    position = (int(digest, 16) % _HASH_BUCKETS) / _HASH_BUCKETS
    if position < config.split.train:
        return "train"
    if position < config.split.train + config.split.validation:
        return "validation"
    return "test"


def _split_stats(pairs: list[QAPair]) -> dict[str, Any]:
    return {
        "pairs": len(pairs),
        "questions": len({question_key(pair) for pair in pairs}),
        "by_language": dict(sorted(Counter(pair.language for pair in pairs).items())),
        "by_source": dict(sorted(Counter(pair.source for pair in pairs).items())),
    }
