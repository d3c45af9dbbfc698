"""A soak: `psyllm serve` under mixed traffic for minutes, watching errors, latency and memory.

Locust drives answers, streams, screens, ratings and a few hostile bodies (each of which must get
its 4xx, which counts as a success) against the real `psyllm serve` on loopback. The worker's
resident memory is read after a warm-up and at the end; it must not grow by more than 10 %. Error
rate and p95 latency are reported for the whole window and for its first and last minute, so a
service that slows down as it ages shows as a rising p95. Results go to bench/results/soak.json.

    .venv/bin/python bench/soak.py --model data/models/finetuned/pretrained --screener data/screener [--minutes 10]
"""

import argparse
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import gevent
import psutil
from locust import HttpUser, between, events, task  # importing locust patches sockets for gevent
from locust.env import Environment
from served import ROOT, start_serve

from components.hardware import machine

QUESTIONS = [
    "How can I stop worrying so much at night?",
    "我最近总是失眠，怎么办？",
    "How do I tell my parents I am sad?",
]
URGENT = "I have the pills ready and I want to kill myself tonight"
SCORES = {"helpfulness": 4, "fluency": 4, "relevance": 3, "logic": 4}
GROWTH_LIMIT = 0.10


class Person(HttpUser):
    """One simulated client: mostly answers, some streams and screens, ratings of its answers, bad bodies."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.issued: list[str] = []

    @task(6)
    def answer(self) -> None:
        reply = self.client.post("/answer", json={"question": random.choice(QUESTIONS), "max_new_tokens": 32})
        if reply.ok:
            self.issued.append(reply.json()["request_id"])

    @task(2)
    def stream(self) -> None:
        with self.client.post(
            "/answer_stream", json={"question": random.choice(QUESTIONS), "max_new_tokens": 32}, catch_response=True
        ) as reply:
            lines = [json.loads(line) for line in reply.text.splitlines() if line]
            if not lines or lines[-1].get("type") != "done":
                reply.failure("the stream did not end with done")

    @task(2)
    def screen(self) -> None:
        self.client.post("/screen", json={"text": random.choice([*QUESTIONS, URGENT])})

    @task(2)
    def rate(self) -> None:
        if self.issued:
            request_id = self.issued.pop()
            self.client.post("/feedback", json={"request_id": request_id, **SCORES})

    @task(1)
    def hostile(self) -> None:
        bodies = [
            ("/answer", {"question": ""}, 400),
            ("/answer", {"question": "x" * 50_000}, 400),
            ("/feedback", {"request_id": "nope", **SCORES}, 404),
            ("/answer", "not json at all", 400),
        ]
        route, body, expected = random.choice(bodies)
        raw = {"data": body, "headers": {"content-type": "application/json"}}
        kwargs = {"json": body} if isinstance(body, dict) else raw
        with self.client.post(route, catch_response=True, **kwargs) as reply:
            if reply.status_code == expected:
                reply.success()
            else:
                reply.failure(f"expected {expected}, got {reply.status_code}")


class Timings:
    """Every measured request as (seconds since the window opened, milliseconds, failed)."""

    def __init__(self) -> None:
        self.opened: float | None = None
        self.requests: list[tuple[float, float, bool]] = []

    def record(self, response_time: float, exception: BaseException | None, **_: object) -> None:
        if self.opened is not None:
            self.requests.append((time.monotonic() - self.opened, response_time, exception is not None))

    def window(self, start_s: float, end_s: float) -> dict[str, float | int]:
        inside = [(ms, failed) for at, ms, failed in self.requests if start_s <= at < end_s]
        latencies = sorted(ms for ms, _ in inside)
        return {
            "requests": len(inside),
            "error_rate": sum(failed for _, failed in inside) / max(len(inside), 1),
            "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))]) if latencies else float("nan"),
        }


def worker_rss(server: subprocess.Popen) -> int:
    return sum(child.memory_info().rss for child in psutil.Process(server.pid).children(recursive=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--screener", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup-minutes", type=float, default=1)
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args()

    server, host = start_serve(args.model, args.screener, "psyllm-soak-")
    try:
        environment, timings = Environment(user_classes=[Person], events=events, host=host), Timings()
        environment.events.request.add_listener(timings.record)
        probe = environment.create_local_runner()
        probe.start(user_count=args.users, spawn_rate=args.users)
        gevent.sleep(args.warmup_minutes * 60)
        environment.stats.reset_all()
        timings.opened = time.monotonic()
        rss_start = worker_rss(server)
        gevent.sleep(args.minutes * 60)
        rss_end = worker_rss(server)
        probe.quit()
        total = environment.stats.total
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    growth = rss_end / rss_start - 1
    result = {
        "machine": machine(),
        "model": str(args.model),
        "users": args.users,
        "minutes_measured": args.minutes,
        "warmup_minutes": args.warmup_minutes,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "error_rate": total.num_failures / max(total.num_requests, 1),
        "requests_per_s": total.total_rps,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "first_minute": timings.window(0, 60),
        "last_minute": timings.window(args.minutes * 60 - 60, args.minutes * 60),
        "worker_rss_mb_start": rss_start / 2**20,
        "worker_rss_mb_end": rss_end / 2**20,
        "rss_growth": growth,
        "rss_growth_within_limit": growth <= GROWTH_LIMIT,
        "server_exit_code": server.returncode,
    }
    out = ROOT / "bench" / "results" / "soak.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for key, value in result.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
