"""The prepare step: crawled pages and Q&A sources in, a clean corpus and leak-free splits out.

Outputs in `out_dir`: `corpus.jsonl`, `qa/{train,validation,test}.jsonl` and
`stats.json`. Every input is read and checked before anything is written, and each file
is written atomically, so bad input leaves the previous outputs intact.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import CORPUS_FILE, QA_DIR, PrepareConfig
from components.jsonl import write_json, write_jsonl
from components.prepare.corpus import clean_corpus, read_corpus_file, read_pages
from components.prepare.splits import SPLITS, split_pairs
from components.qa_data import load_qa

STATS_FILE = "stats.json"


@dataclass(frozen=True)
class PrepareResult:
    corpus_file: Path
    split_files: dict[str, Path]
    stats: dict[str, Any]


def run(config: PrepareConfig, pages_file: Path, out_dir: Path) -> PrepareResult:
    """Build corpus.jsonl and the Q&A splits from crawled pages and the configured sources."""
    documents = read_pages(pages_file)
    for spec in config.corpus_files:
        documents.extend(read_corpus_file(spec))
    pairs = [pair for path in config.qa_sources for pair in load_qa(path)]
    corpus, corpus_stats = clean_corpus(documents, config)
    splits, qa_stats = split_pairs(pairs, config)

    write_jsonl(out_dir / CORPUS_FILE, (doc.as_record() for doc in corpus))
    split_files = {name: out_dir / QA_DIR / f"{name}.jsonl" for name in SPLITS}
    for name, path in split_files.items():
        write_jsonl(path, (pair.as_record() for pair in splits[name]))
    stats = {"corpus": corpus_stats, "qa": qa_stats}
    write_json(out_dir / STATS_FILE, stats)
    return PrepareResult(out_dir / CORPUS_FILE, split_files, stats)
