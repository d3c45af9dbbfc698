"""`psyllm train-screener`: fit each language's heads on the written and real train splits.

Thresholds are tuned on out-of-fold scores (folds by paraphrase or near-duplicate group, so a
twin never scores its own paraphrase), through the same `decide` functions the screener uses:
the urgent threshold is the highest that keeps urgent recall at `target_recall` on the written
messages, the risk threshold the one with the best F1 for "urgent or elevated" over all of them.
The real train split holds about ten urgent messages per language, too few to set a recall
threshold (one message moves recall by 0.1), so its out-of-fold recall, precision and flag rate
are reported beside the written ones instead. Neither test split is ever read.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from components.config import ScreeningConfig
from components.errors import PsyllmError
from components.jsonl import write_json
from components.lineage import file_digest
from components.screening.decide import (
    HEADS,
    RuleVerdict,
    Thresholds,
    rule_verdict,
    urgent_decisions,
)
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
from components.screening.real_labels import by_language, load_real_labels, real_messages
from components.screening.real_sources import source_path
from components.screening.rules import find_matches
from components.screening.screener import MANIFEST_FILE
from components.screening.sentence_encoder import ENCODER_NAME, embed
from components.screening.units import Units, highest_per_message
from components.staging import staged_folder


@dataclass(frozen=True)
class TrainedScreener:
    """Where the screener was written and what the out-of-fold scores said about it."""

    folder: Path
    manifest: dict


def load_real(config: ScreeningConfig, shared_data: Path) -> tuple[dict[Language, list[LabelledMessage]], str | None]:
    """The labelled real messages per language with their texts, or ({}, why) when the shared data is absent."""
    labels = load_real_labels(config.real_labels)
    absent = [
        str(source_path(shared_data, source))
        for source in sorted({label.source for label in labels})
        if not source_path(shared_data, source).is_file()
    ]
    if absent:
        return {}, f"the shared public data is absent ({', '.join(absent)} not found)"
    return by_language(real_messages(labels, shared_data)), None  # type: ignore[return-value]


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
    folded: list[str], scores: np.ndarray, levels: np.ndarray, real: np.ndarray, target_recall: float
) -> tuple[Thresholds, dict]:
    """Thresholds from out-of-fold (urgent, risk) scores, and what they give on the written and real messages.

    `real` marks the real messages: they inform the risk threshold and are reported, but the
    urgent threshold is set on the written ones (see the module docstring).
    """
    verdicts = [rule_verdict(find_matches(text)) for text in folded]
    actual = levels == LEVELS.index("urgent")
    written = np.flatnonzero(~real)
    urgent = choose_urgent_threshold(
        [verdicts[row] for row in written], scores[written, 0], actual[written], target_recall
    )
    thresholds = Thresholds(urgent=urgent, risk=choose_risk_threshold(scores[:, 1], levels != LEVELS.index("none")))
    flagged = urgent_decisions(verdicts, scores[:, 0], urgent)
    report: dict = {
        "tuning": "out-of-fold scores over the written and real train splits",
        "urgent_threshold": thresholds.urgent,
        "risk_threshold": thresholds.risk,
    }
    for name, rows in {"written": ~real, "real": real}.items():
        recall, precision = _recall_precision(flagged[rows], actual[rows])
        report[f"oof_{name}_urgent_recall"] = round(recall, 4)
        report[f"oof_{name}_urgent_precision"] = round(precision, 4)
        report[f"oof_{name}_urgent_flag_rate"] = round(float(flagged[rows].mean()), 4) if rows.any() else 0.0
    return thresholds, report


def _cross_validation_splits(
    messages: list[LabelledMessage], folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    strata = [f"{m.label}:{m.kind.startswith('real:')}" for m in messages]  # real urgent spread over folds too
    return list(splitter.split(np.zeros(len(messages)), strata, [m.group for m in messages]))


def train_language(
    language: Language, messages: list[LabelledMessage], config: ScreeningConfig
) -> tuple[LinearHeads, dict]:
    """Out-of-fold scores over the whole train split set the thresholds; then fit on all of it.

    A held-out message scores as the screener scores it: the highest of its units' scores.
    """
    chosen = config.features[language]
    settings = FeatureSettings(tuple(chosen.ngrams), config.hash_features, chosen.sentence_embedding)
    folded = [fold(m.text) for m in messages]
    units = Units.of(folded)
    embeddings = embed(units) if settings.sentence_embedding else None
    levels = level_indices(messages)
    unit_levels = levels[units.owner]
    scores = np.zeros((len(messages), 2))
    for fit_messages, held_messages in _cross_validation_splits(messages, config.cv_folds, config.seed):
        fit_rows = units.training_rows(fit_messages, levels)
        held_rows = np.flatnonzero(np.isin(units.owner, held_messages))
        fit_texts = [units.texts[row] for row in fit_rows]
        idf = fit_idf(fit_texts, settings)
        fit_inputs = features(fit_texts, settings, idf, None if embeddings is None else embeddings[fit_rows])
        held_texts = [units.texts[row] for row in held_rows]
        held_inputs = features(held_texts, settings, idf, None if embeddings is None else embeddings[held_rows])
        weight, bias = fit_level_head(fit_inputs, unit_levels[fit_rows], config.regularisation)
        held_units = urgent_and_risk(held_inputs @ weight.T + bias)
        scores[held_messages] = highest_per_message(held_units, units.owner[held_rows], len(messages))[held_messages]
    real = np.asarray([m.kind.startswith("real:") for m in messages])
    thresholds, report = tune_thresholds(folded, scores, levels, real, config.target_recall)
    rows = units.training_rows(np.arange(len(messages)), levels)
    heads = LinearHeads.fit(
        language,
        [units.texts[row] for row in rows],
        unit_levels[rows],
        category_targets(messages)[units.owner[rows]],
        settings,
        config.regularisation,
        thresholds,
        None if embeddings is None else embeddings[rows],
    )
    return heads, report


def run(config: ScreeningConfig, shared_data: Path, out_dir: Path) -> TrainedScreener:
    """Train every language's scorer and write them, with a manifest, to `out_dir` in one move."""
    sets = load_sets(config)
    real, real_absent = load_real(config, shared_data)
    languages = {}
    trained = []
    for language, messages in sets.items():
        written_train = [m for m in messages if m.split == "train"]
        real_train = [m for m in real.get(language, []) if m.split == "train"]
        heads, report = train_language(language, written_train + real_train, config)
        trained.append(heads)
        languages[language] = {
            "train_messages": len(written_train),
            "train_urgent": sum(m.label == "urgent" for m in written_train),
            "real_train_messages": len(real_train),
            "real_train_urgent": sum(m.label == "urgent" for m in real_train),
            **report,
        }
    manifest = {
        "format": 3,
        "heads": list(HEADS),
        "english_encoder": ENCODER_NAME,
        "labelled_sets_sha256": file_digest(*config.labelled_sets, config.real_labels),
        "real_messages": real_absent or "trained on the real train split",
        "target_recall": config.target_recall,
        "languages": languages,
    }
    with staged_folder(out_dir) as staging:
        for heads in trained:
            heads.save(staging)
        write_json(staging / MANIFEST_FILE, manifest)
    return TrainedScreener(out_dir, manifest)
