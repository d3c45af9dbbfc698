"""Data layer: the labelled screening sets are well formed, big enough and their test split frozen."""

import json
from collections import Counter

import pytest

from components.screening.labelled import load_counselchat_sample, load_labelled, split_digest
from tests.conftest import PROJECT_ROOT

SCREENING = PROJECT_ROOT / "tests/data/screening"
LANGUAGES = ("en", "zh")


@pytest.fixture(scope="module", params=LANGUAGES)
def labelled(request):
    return request.param, load_labelled(SCREENING / f"{request.param}.jsonl")


def test_each_language_has_enough_urgent_and_non_urgent_messages(labelled):
    _, messages = labelled
    labels = Counter(m.label for m in messages)
    assert labels["urgent"] >= 100
    assert labels["none"] + labels["elevated"] >= 200


def test_hard_negatives_and_paraphrases_are_present(labelled):
    _, messages = labelled
    kinds = Counter(m.kind for m in messages if m.label == "none")
    for hard in ("figurative", "professional", "negation", "media"):
        assert kinds[hard] >= 10, hard
    group_sizes = Counter(m.group for m in messages)
    assert sum(size for size in group_sizes.values() if size > 1) >= 0.2 * len(messages)


def test_ids_and_texts_are_unique(labelled):
    _, messages = labelled
    assert len({m.id for m in messages}) == len(messages)
    assert len({m.text for m in messages}) == len(messages)


def test_paraphrase_groups_never_straddle_the_split(labelled):
    _, messages = labelled
    splits_per_group: dict[str, set[str]] = {}
    for message in messages:
        splits_per_group.setdefault(message.group, set()).add(message.split)
    assert all(len(splits) == 1 for splits in splits_per_group.values())


def test_the_test_split_is_frozen(labelled):
    language, messages = labelled
    frozen = json.loads((SCREENING / "frozen_test_split.json").read_text())
    assert split_digest(messages, "test") == frozen[language]
    test = [m for m in messages if m.split == "test"]
    assert sum(m.label == "urgent" for m in test) >= 50


def test_counselchat_labels_store_ids_not_texts():
    lines = [json.loads(line) for line in (SCREENING / "counselchat_labels.jsonl").read_text().splitlines()]
    assert all(set(line) == {"questionID", "label", "categories", "note"} for line in lines)
    assert len({line["questionID"] for line in lines}) == len(lines) >= 100


def test_counselchat_labels_refer_to_real_questions(shared_file):
    csv_path = shared_file("counsel-chat/20200325_counsel_chat.csv")
    sample = load_counselchat_sample(SCREENING / "counselchat_labels.jsonl", csv_path)
    assert len(sample) >= 100
    assert {m.label for m in sample} == {"none", "elevated", "urgent"}
    notes = [json.loads(line)["note"] for line in (SCREENING / "counselchat_labels.jsonl").read_text().splitlines()]
    texts = "\n".join(m.text.lower() for m in sample)
    assert not [note for note in notes if len(note) > 30 and note.lower() in texts]
