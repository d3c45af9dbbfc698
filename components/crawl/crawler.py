"""The crawl loop: breadth-first within each host, concurrent across hosts, polite within each host.

Each host has its own frontier, crawled by one task at a time, and up to `concurrency` hosts are
crawled at once. Before every request the task waits at its host's gate, which spaces requests by
the larger of our own per-host delay and robots.txt's Crawl-delay. Per-host frontiers keep every
task busy with a host that is ready: from one shared queue, a run of one host's links held every
worker at that host's gate while other hosts' pages waited (bench/crawl.py).
"""

import asyncio
import hashlib
from collections import deque
from datetime import UTC, datetime

import httpx
from tqdm import tqdm

from components.config import CrawlConfig
from components.crawl.extract import extract
from components.crawl.fetch import FetchFailed, FetchPolicy, fetch
from components.crawl.robots import RobotsCache
from components.crawl.state import CrawlState, Page
from components.crawl.urls import host_of, in_scope
from components.language import detect_language
from components.text import normalize_text


class _HostGate:
    """Serialises one host's requests and spaces them `delay_s` apart."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._next_start = 0.0

    async def wait(self, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            pause = self._next_start - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            self._next_start = loop.time() + delay_s


class Crawler:
    """One crawl over `state` from canonical, in-scope `seeds`: resumes its frontier and stops at
    `config.max_pages` pages."""

    def __init__(self, config: CrawlConfig, seeds: list[str], allowed_domains: list[str], state: CrawlState) -> None:
        self._config = config
        self._allowed_domains = allowed_domains
        self._state = state
        self._gates: dict[str, _HostGate] = {}
        self._frontier: dict[str, deque[tuple[str, int]]] = {}
        self._crawling: dict[str, asyncio.Task[None]] = {}
        self._finished = asyncio.Event()
        self._failure: Exception | None = None
        state.enqueue(seeds, depth=0)
        self._policy = FetchPolicy(
            allowed_domains=allowed_domains,
            max_redirects=config.max_redirects,
            max_retries=config.max_retries,
            backoff_base_s=config.backoff_base_s,
            max_page_bytes=config.max_page_bytes,
        )

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self._config.concurrency * 2)
        headers = {"User-Agent": self._config.user_agent}
        timeout = httpx.Timeout(self._config.timeout_s)
        async with httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits) as self._client:
            self._robots = RobotsCache(self._client, self._config.user_agent, self._config.max_page_bytes)
            with tqdm(
                total=self._config.max_pages,
                initial=min(self._state.page_count(), self._config.max_pages),
                desc="crawl",
                unit="page",
                disable=None,
            ) as self._progress:
                for url, depth in self._state.queued():
                    self._schedule(url, depth)
                if self._crawling:
                    await self._finished.wait()
                for task in self._crawling.values():
                    task.cancel()
                await asyncio.gather(*self._crawling.values(), return_exceptions=True)
        if self._failure is not None:
            raise self._failure

    def _schedule(self, url: str, depth: int) -> None:
        """Put a URL on its host's frontier; start crawling waiting hosts while fewer than `concurrency` are."""
        self._frontier.setdefault(host_of(url), deque()).append((url, depth))
        self._start_hosts()

    def _start_hosts(self) -> None:
        for host, waiting in self._frontier.items():
            if len(self._crawling) >= self._config.concurrency:
                return
            if waiting and host not in self._crawling:
                self._crawling[host] = asyncio.create_task(self._crawl_host(host, waiting))

    async def _crawl_host(self, host: str, waiting: deque[tuple[str, int]]) -> None:
        """Visit a host's URLs in order (links found meanwhile join the end) until none is left."""
        try:
            while waiting:
                url, depth = waiting.popleft()
                if self._state.page_count() < self._config.max_pages:
                    await self._visit(url, depth)
        except Exception as error:  # raised by run(), not lost in a task
            self._failure = error
            self._finished.set()
            return
        del self._crawling[host]
        self._start_hosts()
        if not self._crawling:
            self._finished.set()

    async def _visit(self, url: str, depth: int) -> None:
        if not in_scope(url, self._allowed_domains):
            self._state.finish(url, "out_of_scope")
            return

        async def may_visit(target: str) -> bool:
            if target != url and self._state.is_known(target):
                raise FetchFailed("duplicate_url", target)
            rules = await self._robots.rules_for(target)
            if not rules.available:
                raise FetchFailed("robots_unavailable", target)
            return rules.allows(target)

        async def wait_turn(target: str) -> None:
            rules = await self._robots.rules_for(target)
            gate = self._gates.setdefault(host_of(target), _HostGate())
            await gate.wait(max(self._config.per_host_delay_s, rules.crawl_delay_s))

        try:
            fetched = await fetch(self._client, url, self._policy, may_visit, wait_turn)
        except FetchFailed as failure:
            self._state.finish(url, failure.kind)
            return
        if fetched.final_url != url:
            self._state.mark_seen(fetched.final_url, depth)
        extracted = extract(fetched)
        text = normalize_text(extracted.text)
        links = extracted.links if depth < self._config.max_depth else []
        off_domain = [link for link in links if not in_scope(link, self._allowed_domains)]
        self._state.add_off_domain(off_domain)
        in_domain = [link for link in links if link not in off_domain]
        sha256 = hashlib.sha256(text.encode()).hexdigest()
        if not text:
            page, outcome = None, "empty_text"
        elif self._state.has_text(sha256):
            page, outcome = None, "duplicate_text"
        elif self._state.page_count() >= self._config.max_pages:
            return  # budget spent by another worker meanwhile: the URL stays queued for a resume
        else:
            page = Page(
                url=url,
                final_url=fetched.final_url,
                fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
                http_status=fetched.status,
                language=detect_language(text),
                title=normalize_text(extracted.title),
                text=text,
                sha256=sha256,
            )
            outcome = "stored"
        for new_url in self._state.store(url, page, in_domain, depth, outcome):
            self._schedule(new_url, depth + 1)
        if page is not None:
            self._progress.update(1)
