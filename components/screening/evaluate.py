"""`psyllm evaluate-screener`: recall and precision for `urgent`, per language, with intervals.

The frozen test split of the project's labelled set is the measure the release gate
reads. Hand-labelled real CounselChat questions are a second check on text nobody wrote
for this project; they are scored when the shared data is present and skipped otherwise.
"""

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from components.config import ScreeningConfig
from components.errors import PsyllmError
from components.jsonl import write_atomic, write_json
from components.screening.labelled import LEVELS, Level, load_counselchat_sample
from components.screening.screener import Screener
from components.screening.train import load_sets

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"


@dataclass(frozen=True)
class EvaluateResult:
    """The metrics written to metrics.json, and where."""

    metrics: dict
    folder: Path


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95 % by default): sound for small counts and for 0 or 1 rates."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def _rate(successes: int, trials: int) -> dict:
    low, high = wilson_interval(successes, trials)
    value = successes / trials if trials else None
    return {"value": value, "ci95": [round(low, 4), round(high, 4)], "successes": successes, "trials": trials}


def score(actual: list[Level], predicted: list[Level], kinds: list[str] | None = None) -> dict:
    """Urgent recall/precision with Wilson intervals, the urgent 2x2 table and the 3-level confusion."""
    pairs = list(zip(actual, predicted, strict=True))
    true_positive = sum(a == "urgent" and p == "urgent" for a, p in pairs)
    false_negative = sum(a == "urgent" and p != "urgent" for a, p in pairs)
    false_positive = sum(a != "urgent" and p == "urgent" for a, p in pairs)
    true_negative = len(pairs) - true_positive - false_negative - false_positive
    confusion = Counter(pairs)
    result = {
        "messages": len(pairs),
        "urgent_recall": _rate(true_positive, true_positive + false_negative),
        "urgent_precision": _rate(true_positive, true_positive + false_positive),
        "urgent_table": {"tp": true_positive, "fn": false_negative, "fp": false_positive, "tn": true_negative},
        "level_confusion": {a: {p: confusion[(a, p)] for p in LEVELS} for a in LEVELS},
        "level_accuracy": sum(a == p for a, p in pairs) / len(pairs) if pairs else None,
    }
    if kinds is not None:
        by_kind: dict[str, list[int]] = {}
        for kind, (a, p) in zip(kinds, pairs, strict=True):
            correct = (a == "urgent") == (p == "urgent")
            by_kind.setdefault(kind, [0, 0])[0 if correct else 1] += 1
        result["urgent_correct_by_kind"] = {
            kind: {"correct": c, "wrong": w} for kind, (c, w) in sorted(by_kind.items())
        }
    return result


def _percent(rate: dict) -> str:
    if rate["value"] is None:
        return "n/a"
    low, high = rate["ci95"]
    return f"{rate['value']:.3f} [{low:.3f}, {high:.3f}] ({rate['successes']}/{rate['trials']})"


def _section(title: str, metrics: dict) -> list[str]:
    table = metrics["urgent_table"]
    lines = [
        f"## {title}",
        "",
        f"- messages: {metrics['messages']}",
        f"- urgent recall: {_percent(metrics['urgent_recall'])}",
        f"- urgent precision: {_percent(metrics['urgent_precision'])}",
        f"- urgent table: TP {table['tp']}, FN {table['fn']}, FP {table['fp']}, TN {table['tn']}",
        "",
        "| true \\ predicted | " + " | ".join(LEVELS) + " |",
        "|---|" + "---|" * len(LEVELS),
    ]
    for actual, row in metrics["level_confusion"].items():
        lines.append(f"| {actual} | " + " | ".join(str(row[p]) for p in LEVELS) + " |")
    if metrics.get("misses"):
        lines += ["", "Wrong on urgent (id: true -> predicted): " + ", ".join(metrics["misses"])]
    return [*lines, ""]


def _misses(ids: list[str], actual: list[Level], predicted: list[Level]) -> list[str]:
    """Every message whose urgent flag is wrong, as "id: true -> predicted" (ids only, no text)."""
    return [
        f"{id_}: {a} -> {p}"
        for id_, a, p in zip(ids, actual, predicted, strict=True)
        if (a == "urgent") != (p == "urgent")
    ]


def run(config: ScreeningConfig, screener: Screener, out_dir: Path) -> EvaluateResult:
    """Score the frozen test split (and the CounselChat sample if present); write metrics and report."""
    metrics: dict = {"test_split": {}}
    report = ["# Urgent-case screening: evaluation", ""]
    for language, messages in load_sets(config).items():
        test = [m for m in messages if m.split == "test"]
        if not test:
            raise PsyllmError(f"the {language} labelled set has no test split")
        predicted = [verdict.level for verdict in screener.screen_many([m.text for m in test])]
        result = score([m.label for m in test], predicted, [m.kind for m in test])
        result["misses"] = _misses([m.id for m in test], [m.label for m in test], predicted)
        metrics["test_split"][language] = result
        report += _section(f"Frozen test split, {language}", result)
    if config.counselchat_csv.is_file():
        sample = load_counselchat_sample(config.counselchat_labels, config.counselchat_csv)
        predicted = [verdict.level for verdict in screener.screen_many([m.text for m in sample])]
        result = score([m.label for m in sample], predicted)
        result["misses"] = _misses([str(m.question_id) for m in sample], [m.label for m in sample], predicted)
        metrics["counselchat"] = result
        report += _section("CounselChat questions, hand-labelled (en)", result)
    else:
        metrics["counselchat"] = {"skipped": f"{config.counselchat_csv} not found"}
        report += ["## CounselChat questions", "", f"Skipped: {config.counselchat_csv} not found.", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / METRICS_FILE, metrics)
    write_atomic(out_dir / REPORT_FILE, "\n".join(report))
    return EvaluateResult(metrics, out_dir)
