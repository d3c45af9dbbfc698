"""The crawl's resumable state: frontier, seen URLs, stored pages and counters in SQLite.

Each stored page and the links it adds to the frontier are committed in one transaction,
so a crawl killed at any moment restarts exactly where it stopped and refetches nothing it
stored. The state belongs to one unfinished crawl of one scope: a different scope (seeds,
domains, served site contents) starts afresh instead of mixing two crawls, and so does the
crawl after a finished one, so a scheduled rerun really refetches the pages.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS frontier (
    url TEXT PRIMARY KEY, depth INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, final_url TEXT NOT NULL,
    fetched_at TEXT NOT NULL, http_status INTEGER NOT NULL, language TEXT NOT NULL,
    title TEXT NOT NULL, text TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS off_domain (url TEXT PRIMARY KEY);
"""


@dataclass(frozen=True)
class Page:
    """One stored page: a line of pages.jsonl."""

    url: str
    final_url: str
    fetched_at: str
    http_status: int
    language: str
    title: str
    text: str
    sha256: str

    def as_record(self) -> dict[str, object]:
        return asdict(self)


class CrawlState:
    """SQLite-backed frontier and page store for one crawl scope."""

    def __init__(self, path: Path, scope_fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        stored = self._db.execute("SELECT value FROM meta WHERE key='scope'").fetchone()
        finished = self._db.execute("SELECT 1 FROM meta WHERE key='finished'").fetchone() is not None
        self.resumed = stored is not None and stored[0] == scope_fingerprint and not finished
        if stored is not None and not self.resumed:
            with self._db:
                for table in ("frontier", "pages", "counters", "off_domain"):
                    self._db.execute(f"DELETE FROM {table}")
                self._db.execute("DELETE FROM meta WHERE key='finished'")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('scope', ?)", (scope_fingerprint,))

    def mark_finished(self) -> None:
        """The crawl ran to its end: the next one refetches everything rather than resuming."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('finished', '1')")

    def close(self) -> None:
        self._db.close()

    def enqueue(self, urls: list[str], depth: int) -> list[str]:
        """Add URLs to the frontier; returns those it had never seen."""
        with self._transaction():
            return self._enqueue(urls, depth)

    def _enqueue(self, urls: list[str], depth: int) -> list[str]:
        new_urls = [url for url in dict.fromkeys(urls) if not self.is_known(url)]
        next_seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM frontier").fetchone()[0]
        self._db.executemany(
            "INSERT INTO frontier (url, depth, seq) VALUES (?, ?, ?)",
            [(url, depth, next_seq + offset) for offset, url in enumerate(new_urls)],
        )
        return new_urls

    def queued(self) -> list[tuple[str, int]]:
        """Frontier URLs not yet visited, oldest first (breadth-first order)."""
        rows = self._db.execute("SELECT url, depth FROM frontier WHERE status='queued' ORDER BY seq")
        return [(url, depth) for url, depth in rows]

    def is_known(self, url: str) -> bool:
        return self._db.execute("SELECT 1 FROM frontier WHERE url=?", (url,)).fetchone() is not None

    def mark_seen(self, url: str, depth: int) -> None:
        """Record a URL reached by redirect as visited, so no later link fetches it again."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO frontier (url, depth, status, seq) VALUES (?, ?, 'visited', 0) "
                "ON CONFLICT(url) DO UPDATE SET status='visited'",
                (url, depth),
            )

    def finish(self, url: str, outcome: str) -> None:
        """Close a frontier URL without storing a page, counting why (robots, error kind, ...)."""
        with self._transaction():
            self._db.execute("UPDATE frontier SET status='visited' WHERE url=?", (url,))
            self._count(outcome)

    def store(self, url: str, page: Page | None, links: list[str], depth: int, outcome: str) -> list[str]:
        """Atomically: close `url`, keep `page` (None for a duplicate), queue its links, count.

        Returns the links that were new to the frontier.
        """
        with self._transaction():
            self._db.execute("UPDATE frontier SET status='visited' WHERE url=?", (url,))
            if page is not None:
                self._db.execute(
                    "INSERT INTO pages (url, final_url, fetched_at, http_status, language, title, text,"
                    " sha256) VALUES (:url, :final_url, :fetched_at, :http_status, :language, :title,"
                    " :text, :sha256)",
                    page.as_record(),
                )
            new_links = self._enqueue(links, depth + 1)
            self._count(outcome)
        return new_links

    def add_off_domain(self, urls: list[str]) -> None:
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO off_domain VALUES (?)", [(url,) for url in urls])

    def has_text(self, sha256: str) -> bool:
        return self._db.execute("SELECT 1 FROM pages WHERE sha256=?", (sha256,)).fetchone() is not None

    def page_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM pages").fetchone()[0]

    def pages(self) -> Iterator[Page]:
        """Stored pages by URL: the same pages give the same file, whatever order they were fetched in."""
        columns = "url, final_url, fetched_at, http_status, language, title, text, sha256"
        for row in self._db.execute(f"SELECT {columns} FROM pages ORDER BY url"):
            yield Page(*row)

    def counters(self) -> dict[str, int]:
        counts = dict(self._db.execute("SELECT name, count FROM counters ORDER BY name"))
        counts["off_domain_links"] = self._db.execute("SELECT COUNT(*) FROM off_domain").fetchone()[0]
        return counts

    def _count(self, name: str) -> None:
        self._db.execute(
            "INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET count = count + 1",
            (name,),
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One atomic unit of change: committed whole, or rolled back on any error."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
