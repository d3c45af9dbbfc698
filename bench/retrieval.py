r"""How well the console's article search finds the material a counsellor would attach to a person's message.

The queries (bench/retrieval_queries.jsonl) are written messages, in English and Chinese, phrased as a person
asking for help would phrase them, each naming the article(s) of our written sample site (data/sample_site) that
a counsellor would attach; they were written from the articles, not tuned to the retriever. So this measures the
search on our own small site (about 40 articles), not on the open web. `ArticleIndex` is built from the prepared
corpus, every query is run, and the result is recall@5 (share of queries with a relevant article, matched by URL
path, in the top 5) and MRR, per language and overall, with build time and mean query time. The baseline is the
same BM25 over plain word tokens (`\w+` runs, lower-cased: what a tokenizer that is not CJK-aware makes of Chinese,
one token per run of characters between punctuation); `ratio` is recall@5 over the baseline's.

    .venv/bin/python bench/retrieval.py [--corpus data/prepared/corpus.jsonl] [--output bench/results/retrieval.json]
"""

import argparse
import datetime
import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from components.console.retrieval import ArticleIndex
from components.hardware import machine

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "bench/retrieval_queries.jsonl"
K = 5


def score(ranks: list[int | None]) -> dict[str, float | int]:
    """Recall@K and MRR (reciprocal rank of the first relevant article, 0 past K) over one group of queries."""
    return {
        "queries": len(ranks),
        f"recall_at_{K}": round(sum(rank is not None for rank in ranks) / len(ranks), 3),
        "mrr": round(sum(1 / rank for rank in ranks if rank is not None) / len(ranks), 3),
    }


def plain_words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def evaluate(index: ArticleIndex, queries: list[dict]) -> tuple[dict[str, dict[str, float | int]], float]:
    """Scores per language and overall, and the seconds the queries took."""
    ranks: dict[str, list[int | None]] = {}
    query_s = 0.0
    for query in queries:
        started = time.perf_counter()
        found = index.search(query["query"], k=K)
        query_s += time.perf_counter() - started
        paths = [urlsplit(article.url).path for article in found]
        rank = next((i for i, path in enumerate(paths, start=1) if path in query["relevant"]), None)
        ranks.setdefault(query["language"], []).append(rank)
    groups = {language: score(group) for language, group in sorted(ranks.items())}
    groups["overall"] = score([rank for group in ranks.values() for rank in group])
    return groups, query_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/prepared/corpus.jsonl"))
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/retrieval.json")
    args = parser.parse_args()
    if not args.corpus.is_file():
        print(f"skipped: {args.corpus} is not present (run the prepare step first)")
        return
    queries = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    started = time.perf_counter()
    index = ArticleIndex.from_corpus(args.corpus)
    build_s = time.perf_counter() - started
    groups, query_s = evaluate(index, queries)
    baseline, _ = evaluate(ArticleIndex.from_corpus(args.corpus, plain_words), queries)
    recall = f"recall_at_{K}"
    ratios = {group: round(groups[group][recall] / baseline[group][recall], 2) if baseline[group][recall] else None
              for group in groups}  # fmt: skip
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "corpus": str(args.corpus),
        "articles": len(index),
        "k": K,
        "build_s": round(build_s, 4),
        "mean_query_ms": round(1000 * query_s / len(queries), 3),
        "results": groups,
        "baseline_plain_words": baseline,
        "ratio_recall_at_5": ratios,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"| queries | n | recall@{K} | MRR | plain words recall@{K} | ratio |\n|---|---|---|---|---|---|")
    for language, group in groups.items():
        print(f"| {language} | {group['queries']} | {group[recall]:.3f} | {group['mrr']:.3f} | "
              f"{baseline[language][recall]:.3f} | {ratios[language]} |")  # fmt: skip
    timing = f"{len(index)} articles indexed in {build_s:.3f} s; {report['mean_query_ms']} ms a query"
    print(f"{timing}; written to {args.output}")


if __name__ == "__main__":
    main()
