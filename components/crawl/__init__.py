"""The crawl step: fetch psychology articles politely and store their main text.

Output, in `out_dir`: `pages.jsonl` (one page per line) and `report.json`
(pages stored, robots skips, URLs on hosts out of reach, off-domain links, duplicates, errors by kind). The resumable
state sits in `.state/` beside them, outside what DVC deletes before a re-run.
"""

import asyncio
import hashlib
import json
import logging
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from components.config import CrawlConfig
from components.crawl.crawler import Crawler
from components.crawl.site_server import serve_folder
from components.crawl.state import CrawlState
from components.crawl.urls import canonicalize, in_scope
from components.errors import PsyllmError
from components.jsonl import write_json, write_jsonl
from components.lineage import folder_digest

log = logging.getLogger(__name__)

SKIP_KINDS = (
    "robots_disallowed",
    "robots_unavailable",
    "unsupported_type",
    "duplicate_url",
    "empty_text",
    "out_of_scope",
)
PAGES_FILE = "pages.jsonl"
REPORT_FILE = "report.json"


@dataclass(frozen=True)
class CrawlResult:
    pages_file: Path
    report_file: Path
    report: dict[str, object]


def run(config: CrawlConfig, out_dir: Path) -> CrawlResult:
    """Crawl as configured (serving the sample site on loopback if set) and write the outputs."""
    with ExitStack() as stack:
        if config.sample_site is not None:
            root = stack.enter_context(serve_folder(config.sample_site, config.sample_site_port))
            seeds, domains = [root], [urlsplit(root).hostname or "127.0.0.1"]
            scope = {"sample_site": folder_digest(config.sample_site), "root": root}
        else:
            seeds, domains = config.seeds, config.allowed_domains or _hosts(config.seeds)
            scope = {"seeds": sorted(seeds), "allowed_domains": sorted(domains)}
        start = _canonical_seeds(seeds, domains)
        fingerprint = hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()
        state = stack.enter_context(closing(CrawlState(out_dir / ".state" / "crawl.sqlite", fingerprint)))
        if state.resumed:
            log.info("resuming crawl: %d pages already stored", state.page_count())
        asyncio.run(Crawler(config, start, domains, state).run())
        result = _write_outputs(out_dir, state)
        state.mark_finished()
        return result


def _canonical_seeds(seeds: list[str], domains: list[str]) -> list[str]:
    """The seeds in canonical form. One the crawler cannot start from is a mistake to name, before
    anything is written, not a crawl of nothing."""
    if not seeds:
        raise PsyllmError("crawl: nothing to crawl: set crawl.sample_site or crawl.seeds")
    canonical = []
    for seed in seeds:
        url = canonicalize(seed)
        if url is None:
            raise PsyllmError(f"crawl.seeds: {seed!r} is not an http(s) URL")
        if not in_scope(url, domains):
            raise PsyllmError(f"crawl.seeds: {seed} is outside crawl.allowed_domains ({', '.join(domains)})")
        canonical.append(url)
    return canonical


def _hosts(seeds: list[str]) -> list[str]:
    return sorted({urlsplit(seed).hostname or "" for seed in seeds} - {""})


def _write_outputs(out_dir: Path, state: CrawlState) -> CrawlResult:
    counts = state.counters()
    report: dict[str, object] = {
        "pages_stored": state.page_count(),
        "resumed": state.resumed,
        "robots_skips": counts.get("robots_disallowed", 0),
        # URLs on hosts whose robots.txt could not be fetched (no network, or the site failing).
        "unreachable": counts.get("robots_unavailable", 0),
        "off_domain_links": counts.get("off_domain_links", 0),
        "duplicates": counts.get("duplicate_text", 0) + counts.get("duplicate_url", 0),
        "skipped": {kind: counts[kind] for kind in SKIP_KINDS if counts.get(kind)},
        "errors": {
            kind: count
            for kind, count in counts.items()
            if kind not in (*SKIP_KINDS, "stored", "duplicate_text", "off_domain_links")
        },
    }
    pages_file, report_file = out_dir / PAGES_FILE, out_dir / REPORT_FILE
    write_jsonl(pages_file, (page.as_record() for page in state.pages()))
    write_json(report_file, report)
    return CrawlResult(pages_file, report_file, report)
