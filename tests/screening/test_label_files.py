"""Labelled-set files with a fault in them: each is refused with a message naming the place, never half-read."""

import json
from pathlib import Path

import pytest

from components.errors import PsyllmError
from components.screening.labelled import load_labelled
from components.screening.real_labels import load_real_labels

WRITTEN = {"id": "en-1", "group": "g1", "text": "How do I sleep better?", "label": "none", "categories": []}
WRITTEN |= {"kind": "ordinary", "split": "train"}
REAL = {"id": "cc-1", "source": "counselchat", "group": "cc-1", "label": "none", "categories": [], "split": "train"}
REAL |= {"note": "an ordinary question", "round": 1}


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_well_formed_files_load(tmp_path):
    assert [m.id for m in load_labelled(_write(tmp_path / "en.jsonl", [WRITTEN]))] == ["en-1"]
    assert [label.id for label in load_real_labels(_write(tmp_path / "real.jsonl", [REAL]))] == ["cc-1"]


def test_a_real_message_labelled_twice_is_refused_by_id(tmp_path):
    path = _write(
        tmp_path / "real.jsonl",
        [REAL, REAL | {"id": "cc-2", "group": "cc-2"}, REAL | {"label": "elevated", "categories": ["suicide"]}],
    )
    with pytest.raises(PsyllmError, match=r"ids labelled twice: \['cc-1'\]"):
        load_real_labels(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "reddit"}, "source must be one of"),
        ({"label": "urgent"}, "categories must be empty exactly when the label is 'none'"),
        ({"split": "validation"}, "split must be one of"),
        ({"round": 0}, "round must be a whole number from 1"),
    ],
)
def test_a_bad_real_label_names_its_line(tmp_path, change, message):
    path = _write(tmp_path / "real.jsonl", [REAL, REAL | {"id": "cc-2", "group": "cc-2"} | change])
    with pytest.raises(PsyllmError, match=rf"real.jsonl:2: {message}"):
        load_real_labels(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"text": "  "}, "text must be a non-empty string"), ({"label": "severe"}, "label must be one of")],
)
def test_a_bad_written_message_names_its_line(tmp_path, change, message):
    path = _write(tmp_path / "en.jsonl", [WRITTEN | change])
    with pytest.raises(PsyllmError, match=rf"en.jsonl:1: {message}"):
        load_labelled(path)
