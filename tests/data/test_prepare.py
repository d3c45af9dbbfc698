"""Preparation: leak-free splits on real data, corpus cleaning, and all-or-nothing writes."""

import json
from itertools import product
from pathlib import Path

import pytest

from components import prepare
from components.benchmark import Benchmark
from components.config import load_params
from components.errors import PsyllmError
from components.near_dup import shingles
from components.prepare.corpus import Document, clean_corpus
from components.prepare.splits import split_pairs
from components.qa_data import load_qa
from tests.conftest import PROJECT_ROOT

CONFIG = load_params(PROJECT_ROOT / "params.yaml").profiles["default"].prepare
NO_BENCHMARK = Benchmark(questions=[], manifest={"version": "none", "sources": {}})


def exact_key(text: str) -> str:
    return "".join(text.lower().split())


@pytest.fixture(scope="module")
def real_pairs(request):
    from tests.conftest import SHARED_DATA

    paths = [SHARED_DATA / "counsel-chat/20200325_counsel_chat.csv", SHARED_DATA / "psyqa/PsyQA_example.json"]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        pytest.skip(f"shared data sets not present: {', '.join(missing)}")
    return [pair for path in paths for pair in load_qa(path)]


def test_counselchat_repeats_answers_across_its_own_split(shared_file):
    """The reason answer-level dedup exists: the file's own split leaks pasted answers."""
    import csv

    with shared_file("counsel-chat/20200325_counsel_chat.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    splits_by_answer: dict[str, set[str]] = {}
    for row in rows:
        splits_by_answer.setdefault(exact_key(row["answerText"]), set()).add(row["split"])
    assert sum(1 for splits in splits_by_answer.values() if len(splits) > 1) > 0


def test_no_answer_crosses_splits_exactly_or_nearly(real_pairs):
    splits, stats = split_pairs(real_pairs, CONFIG)
    assert stats["groups_of_several_questions"] > 0  # pasted answers were found and grouped
    keys = {name: {exact_key(pair.answer) for pair in members} for name, members in splits.items()}
    for first, second in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not keys[first] & keys[second], f"an answer sits in both {first} and {second}"
    # Independent of MinHash: exact shingle Jaccard over every train × held-out pair.
    train = [(pair, shingles(pair.answer)) for pair in splits["train"]]
    held_out = [(pair, shingles(pair.answer)) for pair in splits["validation"] + splits["test"]]
    threshold = CONFIG.near_duplicate_threshold
    near = [
        (a.question_id, b.question_id)
        for (a, a_set), (b, b_set) in product(train, held_out)
        if threshold * len(a_set) <= len(b_set) <= len(a_set) / threshold
        and len(a_set & b_set) >= threshold * len(a_set | b_set)
    ]
    assert not near


def _as_sets(splits: dict) -> dict:
    return {name: {(p.source, p.question_id, p.answer) for p in pairs} for name, pairs in splits.items()}


def test_split_is_deterministic_and_by_question(real_pairs):
    first, _ = split_pairs(real_pairs, CONFIG)
    second, _ = split_pairs(list(reversed(real_pairs)), CONFIG)
    assert _as_sets(first) == _as_sets(second)
    split_of_question: dict[tuple[str, str], set[str]] = {}
    for name, members in first.items():
        for pair in members:
            split_of_question.setdefault((pair.source, pair.question_id), set()).add(name)
    assert all(len(names) == 1 for names in split_of_question.values())
    total = sum(len(members) for members in first.values())
    assert 0.7 < len(first["train"]) / total < 0.9


def test_split_pairs_are_scrubbed_and_filtered_by_language(real_pairs):
    splits, stats = split_pairs(real_pairs, CONFIG)
    assert set(stats["dropped_by_language"]) <= {"es"}
    everything = [pair for members in splits.values() for pair in members]
    assert {pair.language for pair in everything} == {"en", "zh"}
    assert not any("@" in pair.answer and ".com" in pair.answer for pair in everything)


def doc(text: str, doc_id: str = "") -> Document:
    return Document(doc_id=doc_id or str(hash(text)), source="test", url="", title="", language="", text=text)


ENGLISH = (
    "Sleep problems are common during stressful times. Keeping a regular wake-up time, limiting caffeine "
    "after noon and getting daylight in the morning all help the body clock. If you lie awake for long, "
    "get up and do something calm in dim light until you feel sleepy again. Worrying about sleep "
    "tends to keep people awake, so it can help to write tomorrow's tasks down before bed, leave the "
    "phone outside the bedroom and keep the room cool, dark and quiet. Naps longer than half an hour "
    "can make the night harder. If poor sleep lasts for weeks, a doctor or therapist can help. "
)
CHINESE = "压力大的时候，很多人会出现睡眠问题。每天固定起床时间、下午少喝咖啡、早上多晒太阳，都能帮助调整生物钟。" * 5
FRENCH = (
    "Les troubles du sommeil sont fréquents pendant les périodes de stress. Garder une heure de lever "
    "régulière, limiter la caféine l'après-midi et profiter de la lumière du matin aident l'horloge interne. "
    "Si vous restez éveillé longtemps, levez-vous et faites une activité calme jusqu'à la somnolence."
)


def test_corpus_cleaning_filters_labels_scrubs_and_deduplicates():
    navigation = "Home | Articles | Contact"
    documents = [
        doc(f"{navigation}\n{ENGLISH}\nContact me at sam@example.org.", "a"),
        doc(f"{navigation}\n{ENGLISH.replace('common', 'frequent')}\nContact me at sam@example.org.", "b"),
        doc(f"{navigation}\n{CHINESE}", "c"),
        doc(f"{navigation}\n{FRENCH}", "d"),
        doc(f"{navigation}\nToo short.", "e"),
        doc(f"{navigation}\n{CHINESE}", "f"),
    ]
    kept, stats = clean_corpus(documents, CONFIG)
    assert [document.doc_id for document in kept] == ["a", "c"]
    assert stats["boilerplate_lines"] == 1 and all(navigation not in d.text for d in kept)
    assert stats["dropped_by_language"] == {"fr": 1}
    assert stats["dropped"] == {"exact_duplicate": 1, "near_duplicate": 1, "too_short": 1}
    assert "[EMAIL]" in kept[0].text and "sam@example.org" not in kept[0].text
    assert [document.language for document in kept] == ["en", "zh"]


def test_bad_input_leaves_previous_outputs_intact(tmp_path):
    pages = tmp_path / "pages.jsonl"
    pages.write_text(json.dumps({"url": "http://x/", "text": ENGLISH * 2, "sha256": "1"}) + "\n")
    sources = [PROJECT_ROOT / "data/sample_qa/en.jsonl"]
    config = CONFIG.model_copy(update={"qa_sources": sources})
    first = prepare.run(config, pages, NO_BENCHMARK, tmp_path / "out")
    before = {path: path.read_bytes() for path in (tmp_path / "out").rglob("*.json*")}
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "ok?", "answer": "fine"}\n{"question": "no answer"}\n')
    with pytest.raises(PsyllmError, match=r"broken\.jsonl:2"):
        prepare.run(config.model_copy(update={"qa_sources": [*sources, broken]}), pages, NO_BENCHMARK, tmp_path / "out")
    assert {path: path.read_bytes() for path in (tmp_path / "out").rglob("*.json*")} == before
    assert first.stats["qa"]["pairs_in"] == 85
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_local_corpus_files_join_their_text_fields(tmp_path, shared_file):
    from components.config import CorpusFile
    from components.prepare.corpus import read_corpus_file

    exam = read_corpus_file(
        CorpusFile(
            path=shared_file("cpsyexam/qa/train/cpsyexam_qa.json"), text_fields=["question", "answer"], source="x"
        )
    )
    assert len(exam) == 2921 and all(document.text for document in exam)
    assert not any("<br" in document.text for document in exam)
    notes = tmp_path / "notes.txt"
    notes.write_text(CHINESE)
    assert read_corpus_file(CorpusFile(path=notes, text_fields=[], source="notes"))[0].text == CHINESE
    broken = tmp_path / "dialogues.jsonl"
    broken.write_text('{"text": "fine"}\n{"title": "no text here"}\n')
    with pytest.raises(PsyllmError, match=r"dialogues\.jsonl:2: none of the text fields"):
        read_corpus_file(CorpusFile(path=broken, text_fields=["text"], source="d"))


def test_a_dialogue_stays_in_one_split_and_a_stock_reply_joins_nothing(tmp_path):
    openings = [f"我是第{number}位来访者，最近和家人吵架了，心里很乱。" for number in range(40)]
    lines = [
        json.dumps({"case_id": number, "text": f"来访者：{opening}\n\n心理咨询师：能说说吵了什么吗？第{number}次。"
                    f"\n\n来访者：好的，我会试试的。\n\n心理咨询师：我们从第{number}步开始，先把感受写下来。"},
                   ensure_ascii=False)
        for number, opening in enumerate(openings)
    ]  # fmt: skip
    (tmp_path / "dialogues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits, stats = split_pairs(load_qa(tmp_path / "dialogues.jsonl"), CONFIG)
    assert stats["question_groups"] == 40  # the shared "好的，我会试试的。" did not join the dialogues
    split_of_dialogue: dict[str, set[str]] = {}
    for name, members in splits.items():
        for pair in members:
            split_of_dialogue.setdefault(pair.question_id.split("#")[0], set()).add(name)
    assert all(len(names) == 1 for names in split_of_dialogue.values())
    assert len({name for names in split_of_dialogue.values() for name in names}) > 1


@pytest.mark.parametrize("profile", ["real", "paper"])
def test_the_public_data_profiles_prepare_without_touching_the_benchmark(profile, tmp_path, shared_file):
    """`real` reads CounselChat; `paper` also reads the Chinese sets, as corpus and as Q&A."""
    from components import benchmark
    from tests.conftest import SHARED_DATA

    config = load_params(PROJECT_ROOT / "params.yaml").profiles[profile].prepare

    def located(path: Path) -> Path:
        if path.parts[:3] == ("..", "shared", "data"):
            return shared_file(str(path.relative_to("../shared/data")))
        return PROJECT_ROOT / path

    config = config.model_copy(
        update={
            "qa_sources": [located(path) for path in config.qa_sources],
            "corpus_files": [spec.model_copy(update={"path": located(spec.path)}) for spec in config.corpus_files],
        }
    )
    built = benchmark.build(SHARED_DATA, tmp_path / "benchmark")
    pages = tmp_path / "pages.jsonl"
    pages.write_text(json.dumps({"url": "http://x/", "text": ENGLISH * 2, "sha256": "1"}) + "\n")
    result = prepare.run(config, pages, built, tmp_path / "prepared")  # raises if anything leaks
    stats = result.stats["qa"]
    assert stats["held_out_for_benchmark"] > 0  # CounselChat's benchmark questions stayed out
    for split in ("train", "test"):
        assert stats["splits"][split]["by_language"]["en"] >= 50, split
    if profile == "paper":
        assert result.stats["corpus"]["by_source"]["cpsyexam"] > 500
        assert result.stats["corpus"]["by_source"]["cpsycoun"] > 1000
