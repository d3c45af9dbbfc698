"""Supporting material for the counsellors' console: BM25 over the crawled articles, English and Chinese alike.

A counsellor drafting a reply sees the psychoeducation articles that best match the person's message, with
their URLs, so they can attach one. Chinese has no spaces and we ship no dictionary segmenter, so CJK text is
indexed as overlapping character bigrams (as Lucene's CJKAnalyzer does); that needs no model and no download.
"""

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

_CJK = (
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\u3040-\u30ff\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
)
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]")
_SENTENCE_END = re.compile(r"[.!?。！？]")
# Lucene's English stop set plus pronouns and auxiliaries, which a message is full of and which say nothing of
# its topic.
_STOP_LIST = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with i me my myself we our us you your he him his she her them its am been being were have "
    "has had do does did can could would should just so than too very what when where which who how all any "
    "about from up out off over again don"
)
_STOP_WORDS = frozenset(_STOP_LIST.split())
EXCERPT_CHARS = 300
_WINDOW_LINES = 6


def tokenize(text: str) -> list[str]:
    """Words for alphabetic scripts, character bigrams (or a lone character) for each run of CJK."""
    tokens: list[str] = []
    for run in _TOKEN.findall(unicodedata.normalize("NFKC", text).lower()):
        if _CJK_RUN.match(run):
            tokens.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        elif len(run) > 1 and run not in _STOP_WORDS:
            tokens.append(run)
    return tokens


@dataclass(frozen=True)
class Article:
    """One retrieved article, with the passage that best explains why it was chosen."""

    url: str
    title: str
    language: str
    excerpt: str
    score: float


def _cut(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters, ending at a sentence end (or else a space) in the second half of the limit."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [match.end() for match in _SENTENCE_END.finditer(head) if match.end() >= limit // 2]
    if ends:
        return head[: ends[-1]]
    space = head.rfind(" ")
    return (head[:space] if space >= limit // 2 else head).rstrip() + "…"


def _linkable(url: object) -> bool:
    """Only web addresses: a counsellor's page turns them into links."""
    return isinstance(url, str) and url.lower().startswith(("http://", "https://"))


class ArticleIndex:
    """The articles of a prepared corpus, searchable by a person's message in either language."""

    def __init__(self, rows: list[dict[str, str]], tokenizer: Callable[[str], list[str]] = tokenize) -> None:
        """`tokenizer`: how text becomes terms (another only to compare against, as bench/retrieval.py does)."""
        self._rows, self._tokenize = rows, tokenizer
        documents = [tokenizer(f"{row['title']}\n{row['text']}") for row in rows]
        frequencies = Counter(token for document in documents for token in set(document))
        # Lucene's idf, to rank an article's passages by the rare words of the query they contain.
        self._idf = {token: math.log(1 + (len(rows) - df + 0.5) / (df + 0.5)) for token, df in frequencies.items()}
        self._bm25: bm25s.BM25 | None = None
        if rows:
            self._bm25 = bm25s.BM25(method="lucene")
            self._bm25.index(documents, show_progress=False)

    @classmethod
    def from_corpus(cls, path: Path, tokenizer: Callable[[str], list[str]] = tokenize) -> "ArticleIndex":
        """Every corpus row with a URL (a counsellor can only attach what they can link); no file, no articles."""
        if not path.is_file():
            return cls([], tokenizer)
        with path.open(encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
        return cls(
            [
                {**row, "title": row.get("title") or "", "text": row.get("text") or ""}
                for row in rows
                if _linkable(row.get("url"))
            ],
            tokenizer,
        )

    def __len__(self) -> int:
        return len(self._rows)

    def search(self, query: str, k: int = 5) -> list[Article]:
        """The best `k` articles with a positive score, best first; none when the query shares no word with them."""
        if self._bm25 is None or k <= 0:
            return []
        tokens = [token for token in self._tokenize(query) if token in self._idf]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        best = np.argsort(-scores, kind="stable")[:k]
        return [self._article(int(i), float(scores[i]), set(tokens)) for i in best if scores[i] > 0]

    def _article(self, i: int, score: float, query: set[str]) -> Article:
        row = self._rows[i]
        return Article(row["url"], row["title"], row.get("language", ""), self._excerpt(row, query), score)

    def _excerpt(self, row: dict[str, str], query: set[str]) -> str:
        """The window of consecutive lines, cut to size, holding the most (idf-weighted) distinct query words."""
        lines = [line.strip() for line in row["text"].splitlines() if line.strip()]
        if len(lines) > 1 and lines[0] == row["title"].strip():
            lines = lines[1:]  # the title is shown already
        windows = [_cut(" ".join(lines[i : i + _WINDOW_LINES])) for i in range(len(lines))] or [""]
        return max(windows, key=lambda window: sum(self._idf[token] for token in query & set(self._tokenize(window))))
