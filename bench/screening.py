"""How long screening one message takes on this CPU, against the rules alone as a baseline.

The baseline is folding plus the curated patterns (no learned heads); the candidate is the
full `Screener.screen` on one message at a time, as the service calls it. Both run here on
the same messages: short ones from the written labelled sets, and long ones of exactly
`--long-chars` characters made of real questions from ../shared/data (CounselChat in English,
PsyQA in Chinese, joined until long enough), because long messages are where the sentence
windows cost time. Results are per-message latencies (median, p95) and their ratio, written
to bench/results/screening.json. Needs a trained screener (`psyllm train-screener`).

    .venv/bin/python bench/screening.py [--messages 300] [--long-chars 1500]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from components.config import load_params
from components.hardware import machine
from components.screening import Screener
from components.screening.labelled import load_labelled
from components.screening.normalize import fold
from components.screening.real_sources import read_source
from components.screening.rules import find_matches

ROOT = Path(__file__).resolve().parents[1]


def latencies_ms(function: object, texts: list[str]) -> list[float]:
    timings = []
    for text in texts:
        started = time.perf_counter()
        function(text)  # type: ignore[operator]
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {"median_ms": statistics.median(ordered), "p95_ms": ordered[int(0.95 * (len(ordered) - 1))]}


def long_messages(shared_data: Path, arguments: argparse.Namespace) -> list[str]:
    """Per language, `--messages` // 3 messages of exactly `--long-chars` characters of real questions."""
    messages = []
    for source in ("counselchat", "psyqa"):
        questions = [m.text for m in read_source(shared_data, source)]
        for start in range(arguments.messages // 3):
            joined, index = "", start
            while len(joined) < arguments.long_chars:
                joined += questions[index % len(questions)] + "\n"
                index += 7
            messages.append(joined[: arguments.long_chars])
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300, help="messages per language")
    parser.add_argument("--long-chars", type=int, default=1500, help="length of each long message")
    arguments = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    screener = Screener.load(ROOT / params.paths.screener)
    texts = [
        m.text for path in params.screening.labelled_sets for m in load_labelled(ROOT / path)[: arguments.messages]
    ]
    screener.screen("warm-up: load the encoder before timing")
    result: dict = {
        "machine": machine(),
    }
    for name, batch in (
        ("short", texts),
        (f"long_{arguments.long_chars}_chars", long_messages(ROOT / params.paths.shared_data, arguments)),
    ):
        baseline = summary(latencies_ms(lambda text: find_matches(fold(text)), batch))
        candidate = summary(latencies_ms(screener.screen, batch))
        result[name] = {
            "messages": len(batch),
            "rules_only": baseline,
            "screen": candidate,
            "median_ratio_screen_over_rules": candidate["median_ms"] / baseline["median_ms"],
        }
    out = ROOT / "bench/results/screening.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
