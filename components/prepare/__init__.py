"""The prepare step: crawled pages and Q&A sources in, a clean corpus and leak-free splits out.

Outputs in `out_dir`: `corpus.jsonl`, `qa/{train,validation,test}.jsonl` and
`stats.json`. Every input is read and checked before anything is written, and each file
is written atomically, so bad input leaves the previous outputs intact. Nothing it writes may
come near the real benchmark: its questions are held out of the sources they come from, and any
other text within its near-duplicate threshold stops the step with the texts named.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.benchmark import Benchmark, find_leaks, held_out
from components.config import CORPUS_FILE, QA_DIR, PrepareConfig
from components.errors import PsyllmError
from components.jsonl import write_json, write_jsonl
from components.prepare.corpus import Document, clean_corpus, read_corpus_file, read_pages
from components.prepare.splits import SPLITS, split_pairs
from components.qa_data import QAPair, load_qa

STATS_FILE = "stats.json"


@dataclass(frozen=True)
class PrepareResult:
    corpus_file: Path
    split_files: dict[str, Path]
    stats: dict[str, Any]


def run(config: PrepareConfig, pages_file: Path, benchmark: Benchmark, out_dir: Path) -> PrepareResult:
    """Build corpus.jsonl and the Q&A splits from crawled pages and the configured sources."""
    documents = read_pages(pages_file)
    for spec in config.corpus_files:
        documents.extend(read_corpus_file(spec))
    pairs, held_out_pairs = held_out(benchmark, [pair for path in config.qa_sources for pair in load_qa(path)])
    corpus, corpus_stats = clean_corpus(documents, config)
    splits, qa_stats = split_pairs(pairs, config)
    _check_no_leak(benchmark, corpus, splits)
    qa_stats["held_out_for_benchmark"] = held_out_pairs

    write_jsonl(out_dir / CORPUS_FILE, (doc.as_record() for doc in corpus))
    split_files = {name: out_dir / QA_DIR / f"{name}.jsonl" for name in SPLITS}
    for name, path in split_files.items():
        write_jsonl(path, (pair.as_record() for pair in splits[name]))
    stats = {"corpus": corpus_stats, "qa": qa_stats}
    write_json(out_dir / STATS_FILE, stats)
    return PrepareResult(out_dir / CORPUS_FILE, split_files, stats)


def _check_no_leak(benchmark: Benchmark, corpus: list[Document], splits: dict[str, list[QAPair]]) -> None:
    texts = [(f"corpus document {doc.doc_id} ({doc.source})", doc.text) for doc in corpus]
    for name, pairs in splits.items():
        for pair in pairs:
            where = f"Q&A {name} question {pair.question_id} ({pair.source})"
            texts += [
                (f"{where}, question", f"{pair.question}\n{pair.description}".strip()),
                (f"{where}, answer", pair.answer),
            ]
    leaks = find_leaks(benchmark, texts)
    if leaks:
        raise PsyllmError(
            f"{len(leaks)} training texts are near-duplicates of the real benchmark (version {benchmark.version}), "
            f"e.g. {'; '.join(leaks[:3])}; remove them from the profile's prepare sources, since a model trained on "
            "them would be scored on what it has seen"
        )
