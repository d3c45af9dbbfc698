"""ArticleIndex and tokenize on a tiny written corpus, in English and Chinese, and the retrieval bench's report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.console.retrieval import ArticleIndex, tokenize

ROOT = Path(__file__).resolve().parents[2]
SITE = "http://127.0.0.1:8765"
ARTICLES = [
    (
        "/en/sleep.html",
        "en",
        "Sleeping better",
        "Insomnia keeps many people lying awake at night. A regular wake-up time and getting out of bed when "
        "you cannot sleep both help the body clock settle. Avoid caffeine in the afternoon.",
    ),
    (
        "/en/panic.html",
        "en",
        "Panic attacks",
        "A panic attack is a sudden surge of fear: a pounding heart, breathlessness and dizziness. The "
        "sensations peak within minutes and pass, even though they feel dangerous.",
    ),
    (
        "/en/grief.html",
        "en",
        "Grief",
        "Grief after a death comes in waves. There is no fixed timetable for mourning someone you loved.",
    ),
    (
        "/zh/sleep.html",
        "zh",
        "失眠与睡眠",
        "很多人晚上躺在床上睡不着。固定起床时间，睡不着时起身离开床，都有助于调整生物钟。",
    ),
    (
        "/zh/family.html",
        "zh",
        "家庭冲突",
        "父母催婚、和家人吵架是常见的家庭冲突。试着先听出争吵背后的关心，再表达自己的需要。",
    ),
]


def write_corpus(path: Path, with_unlinked: bool = True) -> Path:
    rows = [
        {"doc_id": f"d{i}", "source": "crawl", "url": SITE + url, "title": title, "language": lang, "text": text}
        for i, (url, lang, title, text) in enumerate(ARTICLES)
    ]
    if with_unlinked:  # a strong match for the sleep queries, but with no URL to attach
        text = "Insomnia, lying awake at night, cannot sleep. 晚上睡不着，失眠。"
        rows.append({"doc_id": "x", "source": "qa", "url": "", "title": "", "language": "en", "text": text})
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def index(tmp_path: Path) -> ArticleIndex:
    return ArticleIndex.from_corpus(write_corpus(tmp_path / "corpus.jsonl"))


def test_tokenize_english_words_and_chinese_bigrams() -> None:
    assert tokenize("I lie AWAKE at Night, a 2nd time") == ["lie", "awake", "night", "2nd", "time"]
    assert tokenize("睡不着") == ["睡不", "不着"]
    assert tokenize("心") == ["心"]
    assert tokenize("CBT 失眠治疗") == ["cbt", "失眠", "眠治", "治疗"]


def test_english_query_finds_the_english_article(index: ArticleIndex) -> None:
    found = index.search("I can't sleep, I lie awake every night with insomnia")
    assert found[0].url == SITE + "/en/sleep.html"
    assert found[0].title == "Sleeping better" and found[0].language == "en"
    assert "awake" in found[0].excerpt and found[0].score > 0


def test_chinese_query_finds_the_chinese_article(index: ArticleIndex) -> None:
    found = index.search("我爸妈一直催婚，每次回家都吵架")
    assert found[0].url == SITE + "/zh/family.html"
    assert all(article.language == "zh" for article in found)


def test_rows_without_url_are_not_indexed(index: ArticleIndex) -> None:
    assert len(index) == len(ARTICLES)
    for query in ("insomnia lying awake at night cannot sleep", "晚上睡不着，失眠"):
        assert all(article.url for article in index.search(query, k=10))


def test_k_is_respected_and_scores_descend(index: ArticleIndex) -> None:
    found = index.search("sleep night heart fear grief", k=2)
    assert len(found) == 2
    assert found[0].score >= found[1].score
    assert index.search("sleep", k=0) == []


def test_empty_or_unknown_query_and_missing_corpus_give_nothing(index: ArticleIndex, tmp_path: Path) -> None:
    assert index.search("") == [] and index.search("   ") == []
    assert index.search("the and of") == [] and index.search("xylophone") == []
    (tmp_path / "empty.jsonl").touch()
    for name in ("missing.jsonl", "empty.jsonl"):
        empty = ArticleIndex.from_corpus(tmp_path / name)
        assert len(empty) == 0 and empty.search("sleep") == []


def test_bench_reports_recall_and_mrr(tmp_path: Path) -> None:
    corpus, output = write_corpus(tmp_path / "corpus.jsonl"), tmp_path / "retrieval.json"
    command = [sys.executable, "bench/retrieval.py", "--corpus", str(corpus), "--output", str(output)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=120)
    report = json.loads(output.read_text(encoding="utf-8"))
    assert {"date", "machine", "articles", "build_s", "mean_query_ms", "results"} <= report.keys()
    assert {"en", "zh", "overall"} <= report["results"].keys()
    for group in report["results"].values():
        assert 0 <= group["recall_at_5"] <= 1 and 0 <= group["mrr"] <= 1
