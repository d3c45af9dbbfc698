"""`psyllm train-screener`: fit each language's heads on the frozen train split.

Thresholds are tuned on out-of-fold scores (folds by paraphrase group, so a twin never
scores its own paraphrase), through the same `decide` functions the screener uses: the
urgent threshold is the highest that keeps urgent recall at `target_recall`, the risk
threshold the one with the best F1 for "urgent or elevated". The test split is never read.
"""

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from components.config import ScreeningConfig
from components.errors import PsyllmError
from components.jsonl import write_json
from components.screening.decide import HEADS, RuleVerdict, Thresholds, rule_verdict, urgent_decisions
from components.screening.labelled import CATEGORIES, LANGUAGES, LEVELS, LabelledMessage, Language, load_labelled
from components.screening.linear_heads import (
    FeatureSettings,
    LinearHeads,
    features,
    fit_idf,
    fit_level_head,
    urgent_and_risk,
)
from components.screening.normalize import fold
from components.screening.rules import find_matches
from components.screening.screener import MANIFEST_FILE
from components.screening.sentence_encoder import ENCODER_NAME, embed


@dataclass(frozen=True)
class TrainResult:
    """Where the screener was written and what the out-of-fold scores said about it."""

    folder: Path
    manifest: dict


def load_sets(config: ScreeningConfig) -> dict[Language, list[LabelledMessage]]:
    """Each configured labelled set, keyed by its language (the file stem)."""
    sets: dict[Language, list[LabelledMessage]] = {}
    for path in config.labelled_sets:
        if path.stem not in LANGUAGES:
            raise PsyllmError(f"screening.labelled_sets: {path} must be named <language>.jsonl, one of {LANGUAGES}")
        sets[path.stem] = load_labelled(path)  # type: ignore[index]
    missing = set(LANGUAGES) - set(sets)
    if missing:
        raise PsyllmError(f"screening.labelled_sets: no labelled set for {sorted(missing)}")
    return sets


def level_indices(messages: list[LabelledMessage]) -> np.ndarray:
    """Each message's level as its index in LEVELS (the level softmax's classes)."""
    return np.asarray([LEVELS.index(m.label) for m in messages], dtype=np.int64)


def category_targets(messages: list[LabelledMessage]) -> np.ndarray:
    """(messages, categories) 0/1 targets in CATEGORIES order."""
    return np.asarray([[category in m.categories for category in CATEGORIES] for m in messages], dtype=np.int64)


def _recall_precision(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    true_positives = int((predicted & actual).sum())
    return true_positives / max(int(actual.sum()), 1), true_positives / max(int(predicted.sum()), 1)


def choose_urgent_threshold(
    verdicts: list[RuleVerdict], urgent_scores: np.ndarray, actual: np.ndarray, target_recall: float
) -> float:
    """The highest threshold whose urgent recall still reaches the target (the most precise such)."""
    for threshold in sorted(set(urgent_scores.tolist()), reverse=True):
        recall, _ = _recall_precision(urgent_decisions(verdicts, urgent_scores, threshold), actual)
        if recall >= target_recall:
            return float(threshold)
    return float(urgent_scores.min())


def choose_risk_threshold(risk_scores: np.ndarray, actual: np.ndarray) -> float:
    """The threshold with the best F1 for "urgent or elevated" against "none"."""
    best_threshold, best_f1 = 0.5, -1.0
    for threshold in sorted(set(risk_scores.tolist())):
        recall, precision = _recall_precision(risk_scores >= threshold, actual)
        f1 = 2 * recall * precision / max(recall + precision, 1e-12)
        if f1 > best_f1:
            best_threshold, best_f1 = float(threshold), f1
    return best_threshold


def tune_thresholds(
    folded: list[str], scores: np.ndarray, levels: np.ndarray, target_recall: float
) -> tuple[Thresholds, dict]:
    """Thresholds from out-of-fold (urgent, risk) scores, and the urgent recall/precision they give."""
    verdicts = [rule_verdict(find_matches(text)) for text in folded]
    actual = levels == LEVELS.index("urgent")
    urgent = choose_urgent_threshold(verdicts, scores[:, 0], actual, target_recall)
    thresholds = Thresholds(urgent=urgent, risk=choose_risk_threshold(scores[:, 1], levels != LEVELS.index("none")))
    recall, precision = _recall_precision(urgent_decisions(verdicts, scores[:, 0], urgent), actual)
    report = {
        "tuning": "out-of-fold scores over the train split",
        "urgent_threshold": thresholds.urgent,
        "risk_threshold": thresholds.risk,
        "oof_urgent_recall": round(recall, 4),
        "oof_urgent_precision": round(precision, 4),
    }
    return thresholds, report


def _group_folds(messages: list[LabelledMessage], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(messages)), [m.label for m in messages], [m.group for m in messages]))


def train_language(
    language: Language, messages: list[LabelledMessage], config: ScreeningConfig
) -> tuple[LinearHeads, dict]:
    """Out-of-fold scores over the whole train split set the thresholds; then fit on all of it."""
    chosen = config.features[language]
    settings = FeatureSettings(tuple(chosen.ngrams), config.hash_features, chosen.sentence_embedding)
    folded = [fold(m.text) for m in messages]
    embeddings = embed(folded) if settings.sentence_embedding else None
    levels = level_indices(messages)
    scores = np.zeros((len(messages), 2))
    for fit_rows, held_rows in _group_folds(messages, config.cv_folds, config.seed):
        fit_texts = [folded[row] for row in fit_rows]
        idf = fit_idf(fit_texts, settings)
        fit_inputs = features(fit_texts, settings, idf, None if embeddings is None else embeddings[fit_rows])
        held_inputs = features(
            [folded[row] for row in held_rows], settings, idf, None if embeddings is None else embeddings[held_rows]
        )
        weight, bias = fit_level_head(fit_inputs, levels[fit_rows], config.regularisation)
        scores[held_rows] = urgent_and_risk(held_inputs @ weight.T + bias)
    thresholds, report = tune_thresholds(folded, scores, levels, config.target_recall)
    heads = LinearHeads.fit(
        language,
        folded,
        levels,
        category_targets(messages),
        settings,
        config.regularisation,
        thresholds,
        embeddings,
    )
    return heads, report


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run(config: ScreeningConfig, out_dir: Path) -> TrainResult:
    """Train every language's scorer and write them, with a manifest, to `out_dir` in one move."""
    sets = load_sets(config)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    languages = {}
    for language, messages in sets.items():
        train_messages = [m for m in messages if m.split == "train"]
        heads, report = train_language(language, train_messages, config)
        heads.save(staging)
        languages[language] = {
            "train_messages": len(train_messages),
            "train_urgent": sum(m.label == "urgent" for m in train_messages),
            **report,
        }
    manifest = {
        "format": 3,
        "heads": list(HEADS),
        "english_encoder": ENCODER_NAME,
        "labelled_sets_sha256": _digest(config.labelled_sets),
        "target_recall": config.target_recall,
        "languages": languages,
    }
    write_json(staging / MANIFEST_FILE, manifest)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return TrainResult(out_dir, manifest)
