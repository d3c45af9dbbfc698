"""The pretraining corpus: crawled pages and local long-form files, cleaned and deduplicated.

Order matters: boilerplate lines are removed before the length check, PII is scrubbed
before deduplication (two pages that differ only in an e-mail address are one page), and
exact duplicates are caught by hash before the costlier MinHash check.
"""

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from components.config import CorpusFile, PrepareConfig
from components.errors import PsyllmError
from components.jsonl import read_json, read_jsonl
from components.language import detect_language
from components.near_dup import NearDuplicateIndex
from components.privacy import scrub_pii
from components.text import normalize_text, strip_html

# A line repeated in this many documents or more can be boilerplate (with the config's fraction).
_MIN_BOILERPLATE_DOCS = 3


@dataclass(frozen=True)
class Document:
    """One corpus document: a line of corpus.jsonl."""

    doc_id: str
    source: str
    url: str
    title: str
    language: str
    text: str

    def as_record(self) -> dict[str, str]:
        return asdict(self)


def read_pages(path: Path) -> list[Document]:
    """Crawled pages (pages.jsonl) as documents."""
    documents = []
    for line_number, record in read_jsonl(path):
        if not isinstance(record.get("text"), str) or not isinstance(record.get("url"), str):
            raise PsyllmError(f"{path}:{line_number}: a page needs string fields 'url' and 'text'")
        documents.append(
            Document(
                doc_id=record.get("sha256") or hashlib.sha256(record["text"].encode()).hexdigest(),
                source="crawl",
                url=record["url"],
                title=str(record.get("title") or ""),
                language="",
                text=record["text"],
            )
        )
    return documents


def read_corpus_file(spec: CorpusFile) -> list[Document]:
    """A local text source: .txt/.md as one document; .json (a list) or .jsonl, fields joined."""
    path = spec.path
    if not path.is_file():
        raise PsyllmError(f"prepare.corpus_files: {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".txt", ".md"):
            return [_document(spec, path.stem, path.read_text(encoding="utf-8"))]
        if suffix == ".jsonl":
            records = [(f"{path}:{number}", record) for number, record in read_jsonl(path)]
        elif suffix == ".json":
            loaded = read_json(path)
            if not isinstance(loaded, list):
                raise PsyllmError(f"{path}: expected a JSON list of records")
            records = [(f"{path}: record {index}", record) for index, record in enumerate(loaded)]
        else:
            raise PsyllmError(f"{path}: corpus files must be .txt, .md, .json or .jsonl")
    except UnicodeDecodeError as bad:
        raise PsyllmError(f"{path}: not valid UTF-8 near byte {bad.start}") from bad
    return [_document(spec, where, _join_fields(record, spec.text_fields, where)) for where, record in records]


def _join_fields(record: Any, fields: list[str], where: str) -> str:  # noqa: ANN401 - raw JSON
    if not isinstance(record, dict):
        raise PsyllmError(f"{where}: expected a JSON object")
    present = [record[field] for field in fields if isinstance(record.get(field), str)]
    if not present:
        raise PsyllmError(f"{where}: none of the text fields {fields} is a string")
    return "\n\n".join(strip_html(part) for part in present)


def _document(spec: CorpusFile, where: str, text: str) -> Document:
    doc_id = hashlib.sha256(f"{spec.source}\0{where}".encode()).hexdigest()
    return Document(doc_id=doc_id, source=spec.source, url="", title="", language="", text=text)


def clean_corpus(documents: list[Document], config: PrepareConfig) -> tuple[list[Document], dict[str, Any]]:
    """Normalise, strip boilerplate, filter by length and language, scrub PII, deduplicate."""
    normalised = [replace(doc, text=normalize_text(doc.text), title=normalize_text(doc.title)) for doc in documents]
    boilerplate = _boilerplate_lines(normalised, config.boilerplate_doc_fraction)
    dropped: Counter[str] = Counter()
    dropped_languages: Counter[str] = Counter()
    seen_hashes: set[str] = set()
    index = NearDuplicateIndex(config.near_duplicate_threshold, config.minhash_permutations)
    kept: list[Document] = []
    for doc in normalised:
        text = "\n".join(line for line in doc.text.split("\n") if line not in boilerplate).strip()
        if len("".join(text.split())) < config.min_doc_chars:
            dropped["too_short"] += 1
            continue
        language = detect_language(text)
        if language not in config.languages:
            dropped_languages[language] += 1
            continue
        text = scrub_pii(text)
        exact_key = hashlib.sha256("".join(text.lower().split()).encode()).hexdigest()
        if exact_key in seen_hashes:
            dropped["exact_duplicate"] += 1
            continue
        seen_hashes.add(exact_key)
        if index.add(doc.doc_id, text):
            dropped["near_duplicate"] += 1
            continue
        kept.append(replace(doc, text=text, title=scrub_pii(doc.title), language=language))
    stats = {
        "documents_in": len(documents),
        "documents_out": len(kept),
        "boilerplate_lines": len(boilerplate),
        "dropped": dict(sorted(dropped.items())),
        "dropped_by_language": dict(sorted(dropped_languages.items())),
        "by_language": dict(sorted(Counter(doc.language for doc in kept).items())),
        "by_source": dict(sorted(Counter(doc.source for doc in kept).items())),
        "characters": sum(len(doc.text) for doc in kept),
    }
    return kept, stats


def _boilerplate_lines(documents: list[Document], doc_fraction: float) -> set[str]:
    """Lines (navigation, footers, share buttons) repeated across a large share of documents."""
    line_counts: Counter[str] = Counter()
    for doc in documents:
        line_counts.update({line for line in doc.text.split("\n") if line})
    threshold = max(_MIN_BOILERPLATE_DOCS, doc_fraction * len(documents))
    return {line for line, count in line_counts.items() if count >= threshold}
