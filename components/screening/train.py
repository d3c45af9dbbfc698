"""`psyllm train-screener`: fit each language's heads on the frozen train split.

Thresholds are tuned on out-of-fold scores (grouped by paraphrase, so a paraphrase never
helps score its twin), through the same `decide_level` the screener uses: the urgent
threshold is the highest that keeps urgent recall at `target_recall`, the risk threshold
the one with the best F1 for "urgent or elevated". The test split is never read here.
"""

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from components.config import ScreeningConfig
from components.errors import PsyllmError
from components.jsonl import write_json
from components.screening.features import LANGUAGES, EnglishEncoder, Features, FeatureSettings, Featurizer, Language
from components.screening.heads import HEADS, LanguageHeads, RuleVerdict, Thresholds, rule_verdict
from components.screening.labelled import LabelledMessage, load_labelled
from components.screening.normalize import fold
from components.screening.rules import find_matches
from components.screening.screener import MANIFEST_FILE


@dataclass(frozen=True)
class TrainResult:
    """Where the screener was written and what cross-validation said about it."""

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


def head_targets(messages: list[LabelledMessage]) -> np.ndarray:
    """(messages, heads) 0/1 targets in HEADS order."""
    rows = [
        [m.label == "urgent", m.label != "none", *(category in m.categories for category in HEADS[2:])]
        for m in messages
    ]
    return np.asarray(rows, dtype=np.int64)


def _fit(features: Features, targets: np.ndarray, config: ScreeningConfig) -> tuple[np.ndarray, float]:
    if targets.min() == targets.max():
        raise PsyllmError("a screening head has only one class in its training data; add labelled examples")
    model = LogisticRegression(C=config.regularisation, class_weight="balanced", max_iter=5000)
    model.fit(features, targets)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def _out_of_fold(
    features: Features, targets: np.ndarray, messages: list[LabelledMessage], config: ScreeningConfig
) -> np.ndarray:
    """Out-of-fold probabilities for the urgent and risk heads."""
    folds = StratifiedGroupKFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    labels = [m.label for m in messages]
    groups = [m.group for m in messages]
    scores = np.zeros((len(messages), 2))
    for train_rows, held_rows in folds.split(np.zeros(len(messages)), labels, groups):
        for head in range(2):
            weight, bias = _fit(features[train_rows], targets[train_rows, head], config)
            logits = features[held_rows] @ weight + bias
            scores[held_rows, head] = 1.0 / (1.0 + np.exp(-np.asarray(logits).ravel()))
    return scores


def urgent_decisions(verdicts: list[RuleVerdict], urgent_scores: np.ndarray, threshold: float) -> np.ndarray:
    """The urgent flag `decide_level` gives at this threshold, for every message."""
    rule = np.array([verdict.urgent for verdict in verdicts])
    held_back = np.array([verdict.past_only for verdict in verdicts])
    return rule | ((urgent_scores >= threshold) & ~held_back)


def _recall_precision(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    true_positives = int((predicted & actual).sum())
    recall = true_positives / max(int(actual.sum()), 1)
    precision = true_positives / max(int(predicted.sum()), 1)
    return recall, precision


def choose_urgent_threshold(
    verdicts: list[RuleVerdict], urgent_scores: np.ndarray, actual: np.ndarray, target_recall: float
) -> float:
    """The highest threshold whose urgent recall still reaches the target (most precise such)."""
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


def train_language(
    language: Language, messages: list[LabelledMessage], featurizer: Featurizer, config: ScreeningConfig
) -> tuple[LanguageHeads, dict]:
    """Fit one language's heads and report its cross-validated urgent recall and precision."""
    folded = [fold(m.text) for m in messages]
    idf = featurizer.fit(language, folded)
    features = featurizer.features(language, folded)
    targets = head_targets(messages)
    verdicts = [rule_verdict(find_matches(text)) for text in folded]
    out_of_fold = _out_of_fold(features, targets, messages, config)
    actual_urgent = targets[:, 0].astype(bool)
    urgent_threshold = choose_urgent_threshold(verdicts, out_of_fold[:, 0], actual_urgent, config.target_recall)
    risk_threshold = choose_risk_threshold(out_of_fold[:, 1], targets[:, 1].astype(bool))
    fitted = [_fit(features, targets[:, head], config) for head in range(len(HEADS))]
    heads = LanguageHeads(
        language=language,
        weight=np.stack([weight for weight, _ in fitted]),
        bias=np.asarray([bias for _, bias in fitted], dtype=np.float32),
        idf=idf,
        thresholds=Thresholds(urgent=urgent_threshold, risk=risk_threshold),
    )
    recall, precision = _recall_precision(
        urgent_decisions(verdicts, out_of_fold[:, 0], urgent_threshold), actual_urgent
    )
    summary = {
        "train_messages": len(messages),
        "train_urgent": int(actual_urgent.sum()),
        "urgent_threshold": urgent_threshold,
        "risk_threshold": risk_threshold,
        "cv_urgent_recall": round(recall, 4),
        "cv_urgent_precision": round(precision, 4),
    }
    return heads, summary


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run(config: ScreeningConfig, out_dir: Path, english: EnglishEncoder | None = None) -> TrainResult:
    """Train every language's heads and write them, with a manifest, to `out_dir` in one move."""
    sets = load_sets(config)
    settings = FeatureSettings(
        char_ngram_max=config.char_ngram_max, word_ngram_max=config.word_ngram_max, buckets=config.hash_features
    )
    featurizer = Featurizer(settings, english)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    languages = {}
    for language, messages in sets.items():
        train_messages = [m for m in messages if m.split == "train"]
        heads, summary = train_language(language, train_messages, featurizer, config)
        heads.save(staging / f"{language}.safetensors")
        languages[language] = summary
    manifest = {
        "format": 1,
        "heads": list(HEADS),
        "features": {
            "char_ngram_max": settings.char_ngram_max,
            "word_ngram_max": settings.word_ngram_max,
            "buckets": settings.buckets,
        },
        "english_encoder": EnglishEncoder.name,
        "labelled_sets_sha256": _digest(config.labelled_sets),
        "target_recall": config.target_recall,
        "languages": languages,
    }
    write_json(staging / MANIFEST_FILE, manifest)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return TrainResult(out_dir, manifest)
