"""Q&A loaders: the real public data sets by path, the project's sample set, and bad input."""

import json
from pathlib import Path

import pytest

from components.errors import PsyllmError
from components.qa_data import load_qa
from tests.conftest import PROJECT_ROOT


def test_counselchat_gives_one_pair_per_answer(shared_file):
    pairs = load_qa(shared_file("counsel-chat/20200325_counsel_chat.csv"))
    assert len(pairs) == 2129
    assert len({pair.question_id for pair in pairs}) == 815
    assert all(pair.question and pair.answer for pair in pairs)
    assert not any("<p>" in pair.answer or "<br" in pair.answer for pair in pairs)


def test_counselchat_html_is_stripped_and_blank_answers_skipped(shared_file, caplog):
    source = shared_file("counsel-chat/counselchat-data.csv")
    assert "<p>" in source.read_text(encoding="utf-8")
    pairs = load_qa(source)
    assert 1400 < len(pairs) < 1482
    assert not any("</p>" in pair.answer or "<p>" in pair.answer for pair in pairs)
    assert "blank answerText skipped" in caplog.text


def test_psyqa_example_gives_one_pair_per_answer(shared_file):
    pairs = load_qa(shared_file("psyqa/PsyQA_example.json"))
    assert len(pairs) == 268
    assert len({pair.question_id for pair in pairs}) == 100
    assert {pair.language for pair in pairs} == {"zh"}


def test_sample_qa_is_bilingual_and_large_enough():
    pairs = [pair for name in ("en", "zh") for pair in load_qa(PROJECT_ROOT / "data/sample_qa" / f"{name}.jsonl")]
    by_language = {language: [p for p in pairs if p.language == language] for language in ("en", "zh")}
    assert len(pairs) >= 150
    assert all(len(members) >= 75 for members in by_language.values())
    assert len({(p.source, p.question_id) for p in pairs}) < len(pairs)  # some questions have two answers


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def test_missing_file_is_named(tmp_path):
    with pytest.raises(PsyllmError, match=r"nowhere\.jsonl: Q&A file not found"):
        load_qa(tmp_path / "nowhere.jsonl")


def test_malformed_jsonl_line_is_named(tmp_path):
    good = json.dumps({"question": "Why can't I sleep?", "answer": "Many people find..."})
    path = write(tmp_path / "qa.jsonl", f"{good}\n{{not json\n")
    with pytest.raises(PsyllmError, match=r"qa\.jsonl:2: not valid JSON"):
        load_qa(path)


def test_missing_field_is_named(tmp_path):
    path = write(tmp_path / "qa.jsonl", json.dumps({"question": "Why?"}) + "\n")
    with pytest.raises(PsyllmError, match=r"qa\.jsonl:1: field 'answer' is missing"):
        load_qa(path)


def test_wrong_encoding_is_reported(tmp_path):
    path = write(tmp_path / "qa.jsonl", json.dumps({"question": "为什么", "answer": "因为"}, ensure_ascii=False), "gbk")
    with pytest.raises(PsyllmError, match="not valid UTF-8"):
        load_qa(path)


def test_psyqa_record_without_answers_is_named(tmp_path):
    path = write(tmp_path / "psyqa.json", json.dumps([{"questionID": 1, "question": "q", "answers": None}]))
    with pytest.raises(PsyllmError, match=r"psyqa\.json: record 0: not a PsyQA question"):
        load_qa(path)


def test_csv_without_counselchat_columns_is_refused(tmp_path):
    path = write(tmp_path / "other.csv", "a,b\n1,2\n")
    with pytest.raises(PsyllmError, match="missing columns questionID"):
        load_qa(path)


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(PsyllmError, match="unknown Q&A format"):
        load_qa(write(tmp_path / "qa.xml", "<qa/>"))


def test_blank_answer_is_skipped_but_wrong_type_is_an_error(tmp_path):
    lines = [{"question": "Q1?", "answer": "   "}, {"question": "Q2?", "answer": "A real answer."}]
    path = write(tmp_path / "qa.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    assert [pair.question for pair in load_qa(path)] == ["Q2?"]
    write(path, json.dumps({"question": "Q?", "answer": 42}) + "\n")
    with pytest.raises(PsyllmError, match=r"qa\.jsonl:1: field 'answer' must be a string"):
        load_qa(path)


def test_question_ids_are_derived_from_question_text_when_absent(tmp_path):
    lines = [{"question": "How do I stop worrying?", "answer": f"Answer number {n} about worry."} for n in (1, 2)]
    path = write(tmp_path / "qa.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    first, second = load_qa(path)
    assert first.question_id == second.question_id


def test_cpsycoun_dialogues_give_a_pair_per_counsellor_reply(shared_file):
    dialogues = load_qa(shared_file("cpsycoun/CPsyCounD.jsonl"))
    evaluation = load_qa(shared_file("cpsycoun/CPsyCounE.jsonl"))
    assert len({pair.question_id.split("#")[0] for pair in dialogues}) == 3084  # every dialogue answers
    assert len({pair.question_id.split("#")[0] for pair in evaluation}) == 45
    assert len(dialogues) > 20_000 and {pair.language for pair in dialogues + evaluation} == {"zh"}
    speakers = ("来访者：", "心理咨询师：", "求助者：", "支持者：")  # "心理咨询师，…" addresses the counsellor
    assert not any(pair.answer.startswith(speakers) or pair.question.startswith(speakers) for pair in dialogues)
    assert not any("（一段时间后）" in pair.answer for pair in dialogues)  # narration is not a reply


DIALOGUE = "\r\n\r\n".join(
    [
        "来访者：我最近总是失眠。",
        "（一段时间后）",
        "心理咨询师：失眠多久了？",
        "来访者：两个月。",
        "心理咨询师：可以试试：",
        "1. 规律作息。",
    ]
)


def test_a_dialogue_pairs_each_reply_with_the_client_turn_before_it(tmp_path):
    records = [
        {"case_id": 7, "text": DIALOGUE},
        {"source_path": "E/1.json", "utterances": ["求助者：我很焦虑。", "支持者：我在听。", "求助者：谢谢。"]},
    ]
    path = write(tmp_path / "dialogues.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    pairs = [(p.question_id, p.question, p.description, p.answer) for p in load_qa(path)]
    assert pairs == [
        ("7#1", "我最近总是失眠。", "", "失眠多久了？"),  # the opening turn asks without a description
        ("7#3", "两个月。", "我最近总是失眠。", "可以试试：\n1. 规律作息。"),  # a paragraph continues its turn
        ("E/1.json#1", "我很焦虑。", "", "我在听。"),  # the client's last turn has no reply
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"case_id": 1, "text": "你好。\n\n来访者：我很累。"}, "the dialogue does not open with a speaker"),
        ({"text": "来访者：我很累。"}, "a dialogue needs `case_id` or `source_path`"),
        ({"case_id": 1, "utterances": "来访者：我很累。"}, "a dialogue needs `text` .* or `utterances`"),
    ],
)
def test_a_malformed_dialogue_is_named_by_line(tmp_path, record, message):
    path = write(tmp_path / "dialogues.jsonl", json.dumps(record, ensure_ascii=False) + "\n")
    with pytest.raises(PsyllmError, match=rf"dialogues\.jsonl:1: {message}"):
        load_qa(path)
