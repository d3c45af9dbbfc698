"""The real benchmark: real questions with every reference answer, frozen, and held out of all training.

Evaluation on questions this project wrote says little about real use, so models are also scored
on real public data, read from `paths.shared_data` at run time (its texts never enter the project):
- `counselchat` (en): every CounselChat question that the CSV's own split puts in `val` or `test`,
  with each of its answers that is not a near-duplicate of a `train`-split answer (therapists paste
  one answer under many questions, so an answer may not cross the split even when its question
  does not);
- `psyqa` (zh): all 100 questions of the PsyQA public example, with every answer.

Texts are cleaned and PII-scrubbed as training pairs are, so a model is scored on what it would
have been trained on. Each source's digest is pinned in `data/benchmark/frozen.json` with the
benchmark's version: a source that yields anything else stops the stage, because a changed benchmark
is a new version and its scores are never compared with the old one's. A source that is absent is
reported in one line and marked missing in the manifest; its questions are never replaced.

`prepare` keeps every profile's training data off the benchmark: it drops the held-out questions
from the sources they come from, then fails if any remaining training text is a near-duplicate
(MinHash Jaccard ≥ 0.8) of a benchmark question or answer.
"""

import hashlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from components.errors import PsyllmError
from components.jsonl import read_json, read_jsonl, write_json, write_jsonl
from components.near_dup import NearDuplicateIndex
from components.privacy import scrub_pair
from components.public_data import COUNSELCHAT_FILE, PSYQA_FILE
from components.qa_data import QAPair, counselchat_rows, counselchat_source, load_qa, qa_pair
from components.text import normalize_text

BenchmarkSource = Literal["counselchat", "psyqa"]
BENCHMARK_SOURCES: tuple[BenchmarkSource, ...] = get_args(BenchmarkSource)
SOURCE_FILES: dict[BenchmarkSource, str] = {"counselchat": COUNSELCHAT_FILE, "psyqa": PSYQA_FILE}
FROZEN_FILE = Path("data/benchmark/frozen.json")
QUESTIONS_FILE = "questions.jsonl"
MANIFEST_FILE = "manifest.json"
NEAR_DUPLICATE = 0.8
_PERMUTATIONS = 128
_COUNSELCHAT_HELD_OUT = ("val", "test")
_SAMPLE_SALT = "benchmark-sample:"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkQuestion:
    """One real question with all of its kept reference answers, under a stable benchmark id.

    `qa_source` and `source_question_id` are what `load_qa` calls the same question, so prepare
    can hold it out of a profile that trains on the same file.
    """

    id: str
    source: BenchmarkSource
    language: str
    question: str
    description: str
    answers: tuple[str, ...]
    qa_source: str
    source_question_id: str

    def pairs(self) -> list[QAPair]:
        """The question with each reference answer, as the evaluation step scores Q&A pairs."""
        return [
            QAPair(self.id, self.question, self.description, answer, self.language, f"benchmark:{self.source}")
            for answer in self.answers
        ]


@dataclass(frozen=True)
class Benchmark:
    """The questions of every present source, and the manifest that says what each source held."""

    questions: list[BenchmarkQuestion]
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def missing_sources(self) -> list[str]:
        return [source for source, entry in self.manifest["sources"].items() if entry["status"] == "missing"]

    def sample(self, per_source: int | None) -> list[BenchmarkQuestion]:
        """The first `per_source` questions of each source in a fixed hashed order (None: all of them).

        The order depends on the ids alone, so every model scored with the same `per_source` on the
        same version answers the same questions, and a CPU-sized sample is not biased by file order.
        """
        chosen = []
        for source in BENCHMARK_SOURCES:
            members = sorted(
                (q for q in self.questions if q.source == source),
                key=lambda q: hashlib.sha256(f"{_SAMPLE_SALT}{q.id}".encode()).hexdigest(),
            )
            chosen += members if per_source is None else members[:per_source]
        return chosen


def _grouped(pairs: Iterable[QAPair]) -> dict[tuple[str, str, str], list[QAPair]]:
    """Answers per distinct question: CounselChat reuses some ids for different questions."""
    grouped: dict[tuple[str, str, str], list[QAPair]] = defaultdict(list)
    for pair in pairs:
        grouped[(pair.question_id, pair.question, pair.description)].append(pair)
    return grouped


def _questions(source: BenchmarkSource, grouped: dict[tuple[str, str, str], list[QAPair]]) -> list[BenchmarkQuestion]:
    questions = []
    seen_ids: dict[str, int] = defaultdict(int)
    for (question_id, question, description), answers in grouped.items():
        seen_ids[question_id] += 1
        suffix = f".{seen_ids[question_id]}" if seen_ids[question_id] > 1 else ""
        questions.append(
            BenchmarkQuestion(
                id=f"{source}-{question_id}{suffix}",
                source=source,
                language=answers[0].language,
                question=question,
                description=description,
                answers=tuple(pair.answer for pair in answers),
                qa_source=answers[0].source,
                source_question_id=question_id,
            )
        )
    return questions


def _read_counselchat(path: Path) -> list[BenchmarkQuestion]:
    rows = list(counselchat_rows(path))
    train_texts = {
        normalize_text(text)
        for row in rows
        if row.split not in _COUNSELCHAT_HELD_OUT
        for text in (row.answer, _question_text(row.question, row.description))
    }
    train_index = NearDuplicateIndex(NEAR_DUPLICATE, _PERMUTATIONS)
    for number, text in enumerate(sorted(train_texts)):
        train_index.add(str(number), text)
    source = counselchat_source(path)
    candidates = [
        qa_pair(row.question_id, row.question, row.description, row.answer, source)
        for row in rows
        if row.split in _COUNSELCHAT_HELD_OUT
    ]
    held_out = [
        scrub_pair(pair)
        for pair in candidates
        if not train_index.similar(pair.answer)
        and not train_index.similar(_question_text(pair.question, pair.description))
    ]
    return _questions("counselchat", _grouped(held_out))


def _read_psyqa(path: Path) -> list[BenchmarkQuestion]:
    return _questions("psyqa", _grouped(scrub_pair(pair) for pair in load_qa(path)))


_READERS = {"counselchat": _read_counselchat, "psyqa": _read_psyqa}


def _question_text(question: str, description: str) -> str:
    return f"{question}\n{description}".strip()


def source_digest(questions: list[BenchmarkQuestion]) -> str:
    """sha256 over the questions' ids, texts and answers: what the frozen file pins."""
    records = sorted((q.id, q.question, q.description, list(q.answers)) for q in questions)
    return hashlib.sha256(json.dumps(records, ensure_ascii=False).encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sources(shared_data: Path) -> dict[BenchmarkSource, list[BenchmarkQuestion] | None]:
    """Each source's benchmark questions, or None where its file is absent."""
    return {
        source: _READERS[source](shared_data / SOURCE_FILES[source])
        if (shared_data / SOURCE_FILES[source]).is_file()
        else None
        for source in BENCHMARK_SOURCES
    }


_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def freeze(shared_data: Path, version: str, frozen_file: Path = FROZEN_FILE) -> dict[str, Any]:
    """Pin every source's digest under a new version name (done once per benchmark version).

    Scores are compared only within a version, so a version name must never stand for two sets of
    questions, and unchanged questions keep their name (renaming them would orphan every score).
    """
    if not _VERSION_NAME.fullmatch(version):
        raise PsyllmError(
            f"benchmark version {version!r}: a name of letters, digits, '.', '-' and '_' is needed, e.g. real-v2"
        )
    sources = read_sources(shared_data)
    absent = [source for source, questions in sources.items() if questions is None]
    if absent:
        raise PsyllmError(f"cannot freeze the benchmark without every source; absent: {', '.join(absent)}")
    digests = {source: source_digest(questions or []) for source, questions in sources.items()}
    if frozen_file.is_file():
        current = read_json(frozen_file)
        if digests == {source: entry["digest"] for source, entry in current["sources"].items()}:
            raise PsyllmError(f"the sources are unchanged: they are frozen as {current['version']} already")
        if version == current["version"]:
            raise PsyllmError(f"{version} is frozen with other questions: a changed benchmark needs a new name")
    frozen = {
        "version": version,
        "sources": {
            source: {
                "file": SOURCE_FILES[source],
                "questions": len(questions or []),
                "answers": sum(len(q.answers) for q in questions or []),
                "digest": digests[source],
            }
            for source, questions in sources.items()
        },
    }
    write_json(frozen_file, frozen)
    return frozen


def _unchanged(out_dir: Path, frozen: dict[str, Any], shared_data: Path) -> Benchmark | None:
    """The benchmark already in `out_dir`, if it was built from these very source files for this version.

    Reading the sources takes about 20 s (language identification, PII scrubbing, MinHash), and the
    stage runs on every pipeline run; a file's sha256 takes milliseconds.
    """
    if not (out_dir / MANIFEST_FILE).is_file() or not (out_dir / QUESTIONS_FILE).is_file():
        return None
    built = load_benchmark(out_dir)
    for source in BENCHMARK_SOURCES:
        path, entry = shared_data / SOURCE_FILES[source], built.manifest["sources"].get(source, {})
        now = _file_sha256(path) if path.is_file() else None
        pinned = frozen["sources"][source]["digest"]
        if (
            now != entry.get("file_sha256")
            or entry.get("digest", pinned) != pinned
            or built.version != frozen["version"]
        ):
            return None
    return built


def build(shared_data: Path, out_dir: Path, frozen_file: Path = FROZEN_FILE) -> Benchmark:
    """Read the sources, check each against its pinned digest, write questions and manifest to `out_dir`."""
    frozen = read_json(frozen_file)
    if (built := _unchanged(out_dir, frozen, shared_data)) is not None:
        return built
    manifest: dict[str, Any] = {"version": frozen["version"], "sources": {}}
    kept: list[BenchmarkQuestion] = []
    for source, questions in read_sources(shared_data).items():
        pinned = frozen["sources"][source]
        path = shared_data / SOURCE_FILES[source]
        if questions is None:
            log.warning("benchmark: %s is absent, so its %d questions are marked missing", path, pinned["questions"])
            manifest["sources"][source] = {
                "status": "missing",
                "file": str(path),
                "file_sha256": None,
                "questions": pinned["questions"],
            }
            continue
        digest = source_digest(questions)
        if digest != pinned["digest"]:
            raise PsyllmError(
                f"{path}: yields another benchmark than version {frozen['version']} pins ({len(questions)} questions, "
                f"digest {digest[:12]}, pinned {pinned['digest'][:12]}); a changed benchmark is a new version: "
                f"freeze it under a new name (`psyllm freeze-benchmark NAME`) and never compare its scores with the old"
            )
        manifest["sources"][source] = {
            "status": "present",
            "file": str(path),
            "file_sha256": _file_sha256(path),
            "questions": len(questions),
            "answers": sum(len(q.answers) for q in questions),
            "digest": digest,
        }
        kept.extend(questions)
    write_jsonl(out_dir / QUESTIONS_FILE, (asdict(question) for question in kept))
    write_json(out_dir / MANIFEST_FILE, manifest)
    return Benchmark(kept, manifest)


def load_benchmark(folder: Path) -> Benchmark:
    """The benchmark the `benchmark` stage wrote."""
    if not (folder / MANIFEST_FILE).is_file():
        raise PsyllmError(f"{folder}: no benchmark; run `psyllm benchmark` (or `dvc repro`) first")
    questions = [
        BenchmarkQuestion(**{**record, "answers": tuple(record["answers"])})
        for _, record in read_jsonl(folder / QUESTIONS_FILE)
    ]
    return Benchmark(questions, read_json(folder / MANIFEST_FILE))


def held_out(benchmark: Benchmark, pairs: list[QAPair]) -> tuple[list[QAPair], int]:
    """The pairs that are not benchmark questions in their own source file, and how many were dropped."""
    benchmark_ids = {(q.qa_source, q.source_question_id) for q in benchmark.questions}
    kept = [pair for pair in pairs if (pair.source, pair.question_id) not in benchmark_ids]
    return kept, len(pairs) - len(kept)


def find_leaks(benchmark: Benchmark, training_texts: Iterable[tuple[str, str]]) -> list[str]:
    """Each training text (named `where`) within Jaccard `NEAR_DUPLICATE` of a benchmark question or answer."""
    index = NearDuplicateIndex(NEAR_DUPLICATE, _PERMUTATIONS)
    for question in benchmark.questions:
        index.add(f"{question.id} (question)", _question_text(question.question, question.description))
        for number, answer in enumerate(question.answers):
            index.add(f"{question.id} (answer {number})", answer)
    return [
        f"{where} ≈ benchmark {', '.join(sorted(matches))}"
        for where, text in training_texts
        if (matches := index.similar(text))
    ]
