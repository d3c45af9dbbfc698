"""The real benchmark: built from ../shared/data, pinned by digest, leak-free, and honest about a missing source."""

import json
import random
import shutil
from pathlib import Path

import pytest

from components import benchmark
from components.benchmark import Benchmark, find_leaks, held_out
from components.errors import PsyllmError
from components.near_dup import jaccard
from components.qa_data import QAPair, counselchat_rows
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Benchmark:
    for relative in benchmark.SOURCE_FILES.values():
        if not (SHARED_DATA / relative).is_file():
            pytest.skip(f"shared data set not present: {SHARED_DATA / relative}")
    return benchmark.build(SHARED_DATA, tmp_path_factory.mktemp("benchmark"))


def test_the_benchmark_matches_its_frozen_version_and_is_large_enough(built):
    frozen = json.loads(benchmark.FROZEN_FILE.read_text())
    assert built.version == frozen["version"]
    languages = [question.language for question in built.questions]
    assert languages.count("en") >= 100 and languages.count("zh") >= 100
    for source, entry in built.manifest["sources"].items():
        assert entry["status"] == "present" and entry["digest"] == frozen["sources"][source]["digest"]
    assert len({question.id for question in built.questions}) == len(built.questions)
    assert all(question.answers for question in built.questions)


def test_no_benchmark_answer_was_pasted_under_a_counselchat_training_question(built):
    """Exhaustive Jaccard on a sample: the MinHash filter let no cross-split copy through."""
    rows = counselchat_rows(SHARED_DATA / benchmark.SOURCE_FILES["counselchat"])
    train_answers = [row.answer for row in rows if row.split == "train"]
    answers = [
        answer for question in built.questions if question.source == "counselchat" for answer in question.answers
    ]
    sample = random.Random(0).sample(answers, 12)
    closest = max(jaccard(answer, other) for answer in sample for other in train_answers)
    assert closest < benchmark.NEAR_DUPLICATE


def test_the_leak_check_agrees_with_exhaustive_jaccard(built):
    """Copies edited by known amounts: clear copies are caught, clearly different texts are not."""
    rng = random.Random(1)
    answers = [answer for question in built.questions for answer in question.answers if len(answer.split()) > 60]
    texts = []
    for number, answer in enumerate(rng.sample(answers, 30)):
        words = answer.split()
        for fraction in (0.0, 0.02, 0.3):
            edited = [f"zz{number}x{i}" if rng.random() < fraction else word for i, word in enumerate(words)]
            texts.append((f"text {number} edited {fraction}", " ".join(edited), answer))
    reported = {line.split(" ≈ ")[0] for line in find_leaks(built, [(where, text) for where, text, _ in texts])}
    for where, text, original in texts:
        similarity = jaccard(text, original)
        if similarity >= 0.9:
            assert where in reported, f"{where}: Jaccard {similarity:.2f} not reported"
        if similarity < 0.6:
            assert where not in reported, f"{where}: Jaccard {similarity:.2f} reported"


def test_prepare_holds_out_benchmark_questions_from_their_own_source(built):
    question = built.questions[0]
    same = QAPair(question.source_question_id, question.question, question.description, "x", "en", question.qa_source)
    other = QAPair(question.source_question_id, question.question, "", "y", "en", "jsonl:ours")
    kept, dropped = held_out(built, [same, other])
    assert kept == [other] and dropped == 1


def test_prepare_stops_when_a_training_text_copies_a_benchmark_answer(built, tmp_path):
    from components import prepare
    from components.config import load_params
    from tests.conftest import PROJECT_ROOT

    question = next(q for q in built.questions if q.source == "counselchat" and len(q.answers[0].split()) > 50)
    ours = tmp_path / "ours.jsonl"
    ours.write_text(json.dumps({"question": "How do I cope?", "answer": question.answers[0]}) + "\n")
    pages = tmp_path / "pages.jsonl"
    pages.write_text("")
    config = load_params(PROJECT_ROOT / "params.yaml").profiles["default"].prepare
    config = config.model_copy(update={"qa_sources": [PROJECT_ROOT / "data/sample_qa/en.jsonl", ours]})
    with pytest.raises(PsyllmError, match=rf"near-duplicates of the real benchmark.*{question.id} \(answer 0\)"):
        prepare.run(config, pages, built, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _shared_copy(tmp_path: Path, sources: list[str]) -> Path:
    shared = tmp_path / "shared"
    for source in sources:
        relative = benchmark.SOURCE_FILES[source]
        (shared / relative).parent.mkdir(parents=True, exist_ok=True)
        (shared / relative).symlink_to(SHARED_DATA / relative)
    return shared


def test_a_missing_source_is_marked_missing_and_not_replaced(built, tmp_path, caplog):
    result = benchmark.build(_shared_copy(tmp_path, ["psyqa"]), tmp_path / "out")
    assert result.manifest["sources"]["counselchat"]["status"] == "missing"
    assert result.manifest["sources"]["psyqa"]["status"] == "present"
    assert {question.source for question in result.questions} == {"psyqa"}
    assert "counsel_chat.csv is absent" in caplog.text


def _with_changed_psyqa(shared: Path) -> Path:
    """`shared` with a PsyQA file whose first answer has one sentence more."""
    psyqa = shared / benchmark.SOURCE_FILES["psyqa"]
    psyqa.parent.mkdir(parents=True)
    records = json.loads((SHARED_DATA / benchmark.SOURCE_FILES["psyqa"]).read_text(encoding="utf-8"))
    records[0]["answers"][0]["answer_text"] += "多一句话。"
    psyqa.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return shared


def test_a_new_version_needs_a_name_and_changed_questions(built, tmp_path):
    """A version name stands for one set of questions: scores are compared only within it."""
    frozen_file = tmp_path / "frozen.json"
    shutil.copy(benchmark.FROZEN_FILE, frozen_file)
    pinned = frozen_file.read_bytes()
    for bad_name in ("", "real v2", "../real-v2"):
        with pytest.raises(PsyllmError, match="a name of letters, digits"):
            benchmark.freeze(SHARED_DATA, bad_name, frozen_file)
    with pytest.raises(PsyllmError, match=f"unchanged: they are frozen as {built.version} already"):
        benchmark.freeze(SHARED_DATA, "real-v2", frozen_file)
    changed = _with_changed_psyqa(_shared_copy(tmp_path, ["counselchat"]))
    with pytest.raises(PsyllmError, match=f"{built.version} is frozen with other questions"):
        benchmark.freeze(changed, built.version, frozen_file)
    assert frozen_file.read_bytes() == pinned
    assert benchmark.freeze(changed, "real-v2", frozen_file)["version"] == "real-v2"
    assert benchmark.build(changed, tmp_path / "out", frozen_file).version == "real-v2"


def test_a_changed_source_is_a_new_benchmark_version(tmp_path):
    shared = _with_changed_psyqa(tmp_path / "shared")
    with pytest.raises(PsyllmError, match="a changed benchmark is a new version"):
        benchmark.build(shared, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(PsyllmError, match="without every source; absent: counselchat"):
        benchmark.freeze(shared, "real-v2", tmp_path / "frozen.json")
