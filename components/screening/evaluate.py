"""`psyllm evaluate-screener`: recall and precision for `urgent`, per language, with intervals.

Two frozen test splits, both read by the release gate: the project's written messages, and
real messages labelled by hand (read from the shared public data; skipped, with the reason,
when it is absent). Every real source is also screened whole, and its urgent flag rate is
set beside its labelled urgent rate: a screener that floods the counsellors' queue with
ordinary questions shows there even when a test split looks fine.
"""

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from components.config import ScreeningConfig
from components.errors import PsyllmError
from components.jsonl import write_atomic, write_json
from components.results import METRICS_FILE
from components.screening.labelled import LEVELS, LabelledMessage, Level
from components.screening.real_labels import load_real_labels
from components.screening.real_sources import SOURCES, RealMessage, Source, read_source
from components.screening.screener import Basis, Screener, Screening
from components.screening.train import load_real, load_sets

REPORT_FILE = "report.md"
MAX_FLAG_RATIO = 1.5  # a source's urgent flag rate may be at most this multiple of its labelled urgent rate


@dataclass(frozen=True)
class ScreenerEvaluation:
    """Where the evaluation was written, and the metrics in its metrics.json."""

    folder: Path
    metrics: dict


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


def score(
    actual: list[Level],
    predicted: list[Level],
    kinds: list[str] | None = None,
    bases: list[Basis | None] | None = None,
    rounds: list[int] | None = None,
) -> dict:
    """Urgent recall/precision with Wilson intervals, the urgent 2x2 table and the 3-level confusion;
    with `bases`, the precision of urgent flags from explicit statements and from the classifier alone;
    with `rounds`, urgent recall and precision per labelling round (each round's test split has been
    read a different number of times, so each is reported on its own too)."""
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
    if bases is not None:
        result["urgent_precision_by_basis"] = {
            basis: _rate(
                sum(a == "urgent" and b == basis for a, b in zip(actual, bases, strict=True)),
                sum(b == basis for b in bases),
            )
            for basis in get_args(Basis)
        }
    if rounds is not None:
        result["urgent_by_round"] = {}
        for round_ in sorted(set(rounds)):
            rows = [row for row, of_row in enumerate(rounds) if of_row == round_]
            part = score([actual[row] for row in rows], [predicted[row] for row in rows])
            result["urgent_by_round"][str(round_)] = {
                key: part[key] for key in ("messages", "urgent_recall", "urgent_precision")
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
    ]
    if "urgent_precision_by_basis" in metrics:
        by_basis = metrics["urgent_precision_by_basis"]
        lines.append(
            f"- urgent precision by basis: explicit statement {_percent(by_basis['statement'])}; "
            f"classifier alone {_percent(by_basis['classifier'])}"
        )
    for round_, part in metrics.get("urgent_by_round", {}).items():
        lines.append(
            f"- labelling round {round_} ({part['messages']} messages): urgent recall "
            f"{_percent(part['urgent_recall'])}, precision {_percent(part['urgent_precision'])}"
        )
    lines += [
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


def _unseen_messages(shared_data: Path, labelled: list[LabelledMessage]) -> dict[Source, list[RealMessage]]:
    """Per source, every message except the real train split, which the heads have seen."""
    seen = {m.id for m in labelled if m.split == "train"}
    return {source: [m for m in read_source(shared_data, source) if m.id not in seen] for source in SOURCES}


def _flag_rates(
    unseen: dict[Source, list[RealMessage]], verdicts: dict[str, Screening], labelled: list[LabelledMessage]
) -> dict:
    """Per source: how often its unseen messages are flagged urgent (and how many of those by an explicit
    statement), against the labelled urgent rate (over every labelled message of the source)."""
    rates = {}
    for source, messages in unseen.items():
        flags = [verdicts[m.text].level for m in messages]
        flagged = sum(level == "urgent" for level in flags)
        labels = [m.label for m in labelled if m.kind == f"real:{source}"]
        labelled_urgent = sum(label == "urgent" for label in labels)
        flag_rate = flagged / len(messages)
        labelled_rate = labelled_urgent / len(labels) if labels else None
        rates[source] = {
            "messages": len(messages),
            "flagged_urgent": _rate(flagged, len(messages)),
            "flagged_urgent_by_statement": sum(verdicts[m.text].basis == "statement" for m in messages),
            "flagged_elevated": sum(level == "elevated" for level in flags),
            "labelled_urgent": _rate(labelled_urgent, len(labels)),
            "flag_ratio": round(flag_rate / labelled_rate, 3) if labelled_rate else None,
        }
    return rates


def _verdicts(screener: Screener, texts: list[str]) -> dict[str, Screening]:
    """Each distinct text's verdict, screened once: the real test split is also part of its source."""
    distinct = list(dict.fromkeys(texts))
    return dict(zip(distinct, screener.screen_many(distinct), strict=True))


def _flag_section(rates: dict, max_ratio: float) -> list[str]:
    lines = [
        "## Urgent flag rate per real source (every message except the real train split)",
        "",
        f"Bar: the flag rate at most {max_ratio}x the labelled urgent rate.",
        "",
        "| source | messages | flagged urgent [95 % CI] | of which statements | flagged elevated "
        "| labelled urgent [95 % CI] | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for source, rate in rates.items():
        ratio = "n/a" if rate["flag_ratio"] is None else f"{rate['flag_ratio']:.2f}"
        lines.append(
            f"| {source} | {rate['messages']} | {_percent(rate['flagged_urgent'])} "
            f"| {rate['flagged_urgent_by_statement']} | {rate['flagged_elevated']} "
            f"| {_percent(rate['labelled_urgent'])} | {ratio} |"
        )
    return [*lines, ""]


def run(config: ScreeningConfig, shared_data: Path, screener: Screener, out_dir: Path) -> ScreenerEvaluation:
    """Score both frozen test splits and every real source's flag rate; write metrics and report."""
    metrics: dict = {"test_split": {}, "real_test_split": {}}
    report = ["# Urgent-case screening: evaluation", ""]
    real, real_absent = load_real(config, shared_data)
    labelled = [m for messages in real.values() for m in messages]
    round_of = {label.id: label.round for label in load_real_labels(config.real_labels)}
    splits = {
        (key, title, language): [m for m in pool if m.split == "test"]
        for language, messages in load_sets(config).items()
        for key, title, pool in (
            ("test_split", "Frozen written test split", messages),
            ("real_test_split", "Frozen real test split", real.get(language, [])),
        )
    }
    unseen = _unseen_messages(shared_data, labelled) if real_absent is None else {}
    verdicts = _verdicts(
        screener,
        [m.text for test in splits.values() for m in test] + [m.text for ms in unseen.values() for m in ms],
    )
    for (key, title, language), test in splits.items():
        if not test:
            if key == "test_split" or real_absent is None:
                raise PsyllmError(f"the {language} {title.lower()} is empty")
            continue
        predicted = [verdicts[m.text].level for m in test]
        bases = [verdicts[m.text].basis for m in test]
        rounds = [round_of[m.id] for m in test] if key == "real_test_split" else None
        result = score([m.label for m in test], predicted, [m.kind for m in test], bases, rounds)
        result["misses"] = _misses([m.id for m in test], [m.label for m in test], predicted)
        metrics[key][language] = result
        report += _section(f"{title}, {language}", result)
    if real_absent is None:
        metrics["sources"] = _flag_rates(unseen, verdicts, labelled)
        report += _flag_section(metrics["sources"], MAX_FLAG_RATIO)
    else:
        metrics["real_test_split"] = {"skipped": real_absent}
        metrics["sources"] = {"skipped": real_absent}
        report += ["## Real messages", "", f"Skipped: {real_absent}.", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / METRICS_FILE, metrics)
    write_atomic(out_dir / REPORT_FILE, "\n".join(report))
    return ScreenerEvaluation(folder=out_dir, metrics=metrics)
