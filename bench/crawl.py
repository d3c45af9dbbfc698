"""Crawl throughput against the politeness limit: several loopback hosts, each asked at most once per delay.

`--hosts` sites are generated, each an index and `--pages` article pages of seeded, distinct text,
the index linking its pages and the other hosts' indexes, and each is served on its own loopback
port (a host, for politeness: robots.txt and the per-host delay). The crawl step
(`components.crawl.run`) crawls them all from their indexes with `per_host_delay_s` = `--delay` and
one worker per host. No crawler may ask one host faster than once per delay, so the limit is hosts /
delay pages per second; the result is the fraction of it reached (pages stored over the crawl's wall
time, server start-up excluded). The baseline is the same crawler one request at a time
(`concurrency` 1), measured in the same run. Results go to bench/results/crawl.json.

    .venv/bin/python bench/crawl.py [--hosts 4] [--pages 40] [--delay 0.2]
"""

import argparse
import json
import random
import re
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from components.config import load_params
from components.crawl import run as crawl
from components.crawl.site_server import serve_folder
from components.hardware import machine

ROOT = Path(__file__).resolve().parents[1]
# Words of the written sample site's English articles, to draw each page's text from.
WORDS = sorted(
    {
        word
        for page in (ROOT / "data/sample_site/en").glob("*.html")
        for word in re.findall(r"\b[a-z]{3,}\b", page.read_text())
    }
)


def article(rng: random.Random, title: str, links: list[str]) -> str:
    """An article page: a title, five paragraphs of seeded text that no other page shares, and links."""
    paragraphs = "".join(
        "<p>" + ". ".join(" ".join(rng.choices(WORDS, k=12)).capitalize() for _ in range(4)) + ".</p>" for _ in range(5)
    )
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title></head><body>"
        f"<article><h1>{title}</h1>{paragraphs}</article><nav><ul>{anchors}</ul></nav></body></html>"
    )


def build_sites(folder: Path, hosts: int, pages: int) -> list[Path]:
    """One folder per host: index.html and pages/N.html; the indexes' cross-links are filled in once served."""
    rng = random.Random(18)
    sites = []
    for host in range(hosts):
        site = folder / f"host{host}"
        (site / "pages").mkdir(parents=True)
        for page in range(pages):
            (site / f"pages/{page}.html").write_text(article(rng, f"Host {host} page {page}", ["/"]))
        (site / "index.html").write_text(article(rng, f"Host {host}", [f"/pages/{page}.html" for page in range(pages)]))
        sites.append(site)
    return sites


def link_indexes(sites: list[Path], roots: list[str]) -> None:
    """Each index links every other host's index, as sites cite each other."""
    for site, root in zip(sites, roots, strict=True):
        others = "".join(f'<li><a href="{other}">{other}</a></li>' for other in roots if other != root)
        index = site / "index.html"
        index.write_text(index.read_text().replace("</ul></nav>", others + "</ul></nav>"))


@dataclass(frozen=True)
class CrawlRun:
    concurrency: int
    pages: int
    wall_s: float

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.wall_s


def crawl_once(roots: list[str], concurrency: int, delay: float, total_pages: int, out_dir: Path) -> CrawlRun:
    defaults = load_params(ROOT / "params.yaml").profiles["default"].crawl
    config = defaults.model_copy(
        update={
            "sample_site": None,
            "seeds": roots,
            "allowed_domains": ["127.0.0.1"],
            "max_pages": total_pages,
            "max_depth": 3,
            "concurrency": concurrency,
            "per_host_delay_s": delay,
        }
    )
    started = time.perf_counter()
    result = crawl(config, out_dir)
    wall = time.perf_counter() - started
    return CrawlRun(concurrency, int(result.report["pages_stored"]), round(wall, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--pages", type=int, default=40, help="article pages per host (besides its index)")
    parser.add_argument("--delay", type=float, default=0.2, help="per-host delay, seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/crawl.json")
    args = parser.parse_args()
    total_pages = args.hosts * (args.pages + 1)
    with tempfile.TemporaryDirectory(prefix="psyllm-crawl-bench-") as scratch, ExitStack() as servers:
        sites = build_sites(Path(scratch) / "sites", args.hosts, args.pages)
        roots = [servers.enter_context(serve_folder(site, 0)) for site in sites]
        link_indexes(sites, roots)
        candidate = crawl_once(roots, args.hosts, args.delay, total_pages, Path(scratch) / "concurrent")
        baseline = crawl_once(roots, 1, args.delay, total_pages, Path(scratch) / "sequential")
    limit = args.hosts / args.delay
    report = {
        "hosts": args.hosts,
        "pages_per_host": args.pages + 1,
        "per_host_delay_s": args.delay,
        "politeness_limit_pages_per_s": round(limit, 3),
        "machine": machine(),
        "runs": [{**asdict(run), "pages_per_second": round(run.pages_per_second, 2)} for run in (candidate, baseline)],
        "fraction_of_limit": round(candidate.pages_per_second / limit, 3),
        "speedup_over_sequential": round(candidate.pages_per_second / baseline.pages_per_second, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| crawler | pages | seconds | pages/s | of the limit |\n|---|---|---|---|---|")
    for run in (candidate, baseline):
        name = f"{run.concurrency} workers" if run.concurrency > 1 else "one request at a time"
        rate = run.pages_per_second
        print(f"| {name} | {run.pages} | {run.wall_s} | {rate:.2f} | {rate / limit:.3f} |")
    print(f"limit {limit:g} pages/s ({args.hosts} hosts / {args.delay} s); written to {args.out}")


if __name__ == "__main__":
    main()
