"""Data layer: the written and real labelled screening sets are well formed, big enough, their test splits frozen."""

import json
from collections import Counter

import pytest
from sklearn.metrics import cohen_kappa_score

from components.screening.labelled import load_labelled, split_digest
from components.screening.real_labels import (
    draw_split,
    load_real_labels,
    near_duplicate_groups,
    real_digest,
    real_messages,
)
from components.screening.real_sources import read_source
from tests.conftest import PROJECT_ROOT, SHARED_DATA

SCREENING = PROJECT_ROOT / "data/screening"
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
    assert sum(m.label == "urgent" for m in test) >= 30


@pytest.fixture(scope="module")
def real_labels():
    return load_real_labels(SCREENING / "real_labels.jsonl")


def test_real_labels_store_ids_not_texts_and_cover_every_source(real_labels):
    lines = [json.loads(line) for line in (SCREENING / "real_labels.jsonl").read_text().splitlines()]
    assert all(
        set(line) == {"id", "source", "group", "label", "categories", "split", "note", "round"} for line in lines
    )
    assert all(len(line["note"]) <= 100 for line in lines)
    per_source = Counter(label.source for label in real_labels)
    assert per_source["counselchat"] >= 815 and per_source["psyqa"] == 100
    assert per_source["cpsycound"] + per_source["cpsycoune"] >= 1000
    for language_sources in (("counselchat",), ("psyqa", "cpsycound", "cpsycoune")):
        levels = Counter(label.label for label in real_labels if label.source in language_sources)
        assert levels["urgent"] >= 5 and levels["elevated"] >= 5


def test_the_real_split_is_the_one_drawn_and_frozen(real_labels):
    assert draw_split(real_labels) == {label.id: label.split for label in real_labels}
    frozen = json.loads((SCREENING / "real_frozen_test_split.json").read_text())["rounds"]
    assert sorted(frozen) == sorted({str(label.round) for label in real_labels})
    for round_, pinned in frozen.items():
        assert real_digest(real_labels, "test", int(round_)) == pinned["digest"], f"round {round_}"
        in_round = [label for label in real_labels if label.round == int(round_)]
        assert 0.25 <= sum(label.split == "test" for label in in_round) / len(in_round) <= 0.35
    groups: dict[str, set[str]] = {}
    for label in real_labels:
        groups.setdefault(f"{label.source}:{label.group}", set()).add(label.split)
    assert all(len(splits) == 1 for splits in groups.values())


def test_real_labels_point_at_real_messages_and_hold_no_text(real_labels, shared_file):
    shared_file("counsel-chat/20200325_counsel_chat.csv")
    messages = real_messages(real_labels, SHARED_DATA)
    by_id = {m.id: m for m in messages}
    texts = "\n".join(m.text.lower() for m in messages)
    assert not [label.note for label in real_labels if len(label.note) > 30 and label.note.lower() in texts]
    rounds = sorted({label.round for label in real_labels})
    round_of = {label.id: label.round for label in real_labels}
    for source in ("counselchat", "psyqa", "cpsycound", "cpsycoune"):
        sourced = [m for m in read_source(SHARED_DATA, source) if m.id in by_id]
        groups = near_duplicate_groups([[m for m in sourced if round_of[m.id] == r] for r in rounds])
        assert all(by_id[m.id].group == f"{source}:{groups[m.id]}" for m in sourced), source


def test_second_rater_agreement_on_urgent_is_the_one_reported_and_never_read_the_test_split(real_labels):
    lines = (SCREENING / "real_second_rater_urgent.jsonl").open()
    second = {line["id"]: line["label"] == "urgent" for line in map(json.loads, lines)}
    split = {label.id: label.split for label in real_labels}
    assert len(second) >= 150 and {split[i] for i in second} == {"train"}
    first = {label.id: label.label == "urgent" for label in real_labels}
    ids = sorted(second)
    kappa = cohen_kappa_score([first[i] for i in ids], [second[i] for i in ids])
    assert f"Cohen's kappa {kappa:.2f}" in (SCREENING / "README.md").read_text()


@pytest.mark.parametrize("second_rater_file", ["real_second_rater.jsonl", "real_second_rater_round2.jsonl"])
def test_second_rater_agreement_is_the_one_reported(real_labels, second_rater_file):
    second = {line["id"]: line["label"] for line in map(json.loads, (SCREENING / second_rater_file).open())}
    first = {label.id: label.label for label in real_labels}
    assert len(second) >= 200 and set(second) <= set(first)
    ids = sorted(second)
    kappa = cohen_kappa_score([first[i] for i in ids], [second[i] for i in ids])
    assert f"Cohen's kappa {kappa:.2f}" in (SCREENING / "README.md").read_text()
