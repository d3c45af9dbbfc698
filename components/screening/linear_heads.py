"""Each language's learned part: logistic-regression heads over that language's features.

Features are blocks of hashed n-gram TF-IDF, each L2-normalised on its own, plus frozen
sentence embeddings where a good encoder exists (params.yaml `screening.features`). English:
word unigrams (exact phrasing) and character 2-5-grams (typos, slang, "kms", "k1ll") beside
all-MiniLM-L6-v2 embeddings (meaning). Chinese: character n-grams inside whitespace-split
runs; MiniLM's vocabulary is English (most Chinese characters are unknown to it), and Chinese
has no spaces, characters carry meaning, and the figurative 死 idioms (笑死, 累死) differ from
crisis phrases by a neighbouring character, which an n-gram sees. Hashing keeps the
vocabulary out of the artefact, which holds only weights, the IDF vectors and thresholds
(safetensors, no pickle).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from components.config import NgramBlock
from components.errors import PsyllmError
from components.screening.decide import Thresholds, artefact_metadata
from components.screening.labelled import CATEGORIES, LEVELS, Language
from components.screening.sentence_encoder import embed
from components.screening.units import Units


def _written(block: NgramBlock) -> str:
    """A block as the artefact's header holds it: `analyzer:min-max`."""
    return f"{block.analyzer}:{block.min_n}-{block.max_n}"


def _read_block(written: str) -> NgramBlock:
    analyzer, _, sizes = written.partition(":")
    low, _, high = sizes.partition("-")
    try:
        return NgramBlock(analyzer=analyzer, min_n=int(low), max_n=int(high))
    except ValueError as error:  # a non-number, or a block the params would refuse
        raise PsyllmError(f"screener artefact: unreadable n-gram block {written!r}") from error


@dataclass(frozen=True)
class FeatureSettings:
    """What one language's heads read; stored in the artefact's header."""

    blocks: tuple[NgramBlock, ...]
    buckets: int
    sentence_embedding: bool

    def as_metadata(self) -> dict[str, str]:
        return {
            "ngrams": ",".join(_written(block) for block in self.blocks),
            "buckets": str(self.buckets),
            "sentence_embedding": str(self.sentence_embedding),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> "FeatureSettings":
        if "ngrams" not in metadata:
            raise PsyllmError("screener artefact: written by an older version; run `psyllm train-screener` again")
        blocks = tuple(_read_block(written) for written in metadata["ngrams"].split(","))
        return cls(blocks, int(metadata["buckets"]), metadata["sentence_embedding"] == "True")


def _counts(texts: list[str], block: NgramBlock, buckets: int) -> sparse.csr_matrix:
    vectorizer = HashingVectorizer(
        analyzer=block.analyzer,
        ngram_range=(block.min_n, block.max_n),
        n_features=buckets,
        alternate_sign=False,
        norm=None,
        lowercase=False,
        token_pattern=r"(?u)\b\w+\b" if block.analyzer == "word" else None,
    )
    return vectorizer.transform(texts).astype(np.float32)


def fit_idf(folded_texts: list[str], settings: FeatureSettings) -> np.ndarray:
    """The IDF learned from training messages: (blocks, buckets) floats."""
    return np.stack(
        [
            TfidfTransformer(sublinear_tf=True).fit(_counts(folded_texts, block, settings.buckets)).idf_
            for block in settings.blocks
        ]
    ).astype(np.float32)


def features(
    folded_texts: list[str], settings: FeatureSettings, idf: np.ndarray, embeddings: np.ndarray | None
) -> sparse.csr_matrix:
    """[sentence embedding |] one sublinear TF-IDF block after another, each L2-normalised.

    `embeddings` are the texts' sentence embeddings (`sentence_encoder.embed`), given exactly
    when the settings read them.
    """
    if settings.sentence_embedding != (embeddings is not None):
        raise ValueError("features: pass sentence embeddings exactly when the settings read them")
    parts = []
    if embeddings is not None:
        parts.append(sparse.csr_matrix(embeddings))
    for block, block_idf in zip(settings.blocks, idf, strict=True):
        counts = _counts(folded_texts, block, settings.buckets)
        counts.data = 1.0 + np.log(counts.data)
        parts.append(normalize(counts @ sparse.diags(block_idf)))
    return sparse.hstack(parts).tocsr()


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic-regression logits to probabilities."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits)))


def softmax(logits: np.ndarray) -> np.ndarray:
    """(messages, classes) logits to probabilities that sum to one per message."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def urgent_and_risk(level_logits: np.ndarray) -> np.ndarray:
    """(messages, 2): P(urgent), and P(elevated or urgent) = 1 - P(none), from the level softmax."""
    levels = softmax(level_logits)
    return np.column_stack([levels[:, LEVELS.index("urgent")], 1.0 - levels[:, LEVELS.index("none")]])


def _balanced_logistic_regression(
    inputs: sparse.csr_matrix, targets: np.ndarray, regularisation: float
) -> LogisticRegression:
    if len(np.unique(targets)) < 2:
        raise PsyllmError("a screening head has only one class in its training data; add labelled examples")
    model = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=5000)
    return model.fit(inputs, targets)


def fit_level_head(
    inputs: sparse.csr_matrix, level_indices: np.ndarray, regularisation: float
) -> tuple[np.ndarray, np.ndarray]:
    """One balanced softmax over none/elevated/urgent: (3, features) weights, (3,) biases.

    One softmax rather than a yes/no urgent head: elevated messages (thoughts without intent,
    past risk) are a class of their own instead of negatives lumped with everyday ones.
    """
    if len(np.unique(level_indices)) < len(LEVELS):
        raise PsyllmError(f"the level head needs labelled examples of every level ({', '.join(LEVELS)})")
    model = _balanced_logistic_regression(inputs, level_indices, regularisation)
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def fit_head(inputs: sparse.csr_matrix, targets: np.ndarray, regularisation: float) -> tuple[np.ndarray, float]:
    """One balanced yes/no head (a category): (weights, bias)."""
    model = _balanced_logistic_regression(inputs, targets, regularisation)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


class LinearHeads:
    """One language's heads: weights over its features, the IDF, and the thresholds."""

    def __init__(
        self,
        language: Language,
        settings: FeatureSettings,
        idf: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        thresholds: Thresholds,
    ) -> None:
        self.language = language
        self.settings = settings
        self.idf = idf
        self.weight = weight  # (len(WEIGHT_ROWS), features): the level softmax's rows, then each category's
        self.bias = bias  # (len(WEIGHT_ROWS),)
        self.thresholds = thresholds

    @classmethod
    def fit(
        cls,
        language: Language,
        folded_texts: list[str],
        level_indices: np.ndarray,
        category_targets: np.ndarray,
        settings: FeatureSettings,
        regularisation: float,
        thresholds: Thresholds,
        embeddings: np.ndarray | None = None,
    ) -> "LinearHeads":
        """Fit the level softmax and one yes/no head per category (`category_targets` columns)."""
        idf = fit_idf(folded_texts, settings)
        inputs = features(folded_texts, settings, idf, embeddings)
        level_weight, level_bias = fit_level_head(inputs, level_indices, regularisation)
        categories = [
            fit_head(inputs, category_targets[:, column], regularisation) for column in range(len(CATEGORIES))
        ]
        weight = np.vstack([level_weight, *(weights for weights, _ in categories)])
        bias = np.concatenate([level_bias, np.asarray([bias for _, bias in categories], dtype=np.float32)])
        return cls(language, settings, idf, weight, bias, thresholds)

    def probabilities_for(self, units: Units) -> np.ndarray:
        """(units, HEADS) probabilities: urgent and risk from the level softmax, then the categories."""
        embeddings = embed(units) if self.settings.sentence_embedding else None
        logits = features(units.texts, self.settings, self.idf, embeddings) @ self.weight.T + self.bias
        return np.column_stack([urgent_and_risk(logits[:, : len(LEVELS)]), sigmoid(logits[:, len(LEVELS) :])])

    @staticmethod
    def path(folder: Path, language: Language) -> Path:
        return folder / f"{language}.safetensors"

    def save(self, folder: Path) -> None:
        # Row-major copies: safetensors writes an array's buffer as if it were, and scikit-learn's
        # multinomial coefficients come out column-major.
        tensors = {"weight": self.weight, "bias": self.bias, "idf": self.idf}
        save_file(
            {name: np.ascontiguousarray(tensor) for name, tensor in tensors.items()},
            str(self.path(folder, self.language)),
            metadata={**self.settings.as_metadata(), **self.thresholds.as_metadata()},
        )

    @classmethod
    def load(cls, folder: Path, language: Language) -> "LinearHeads":
        path = cls.path(folder, language)
        metadata = artefact_metadata(path, "numpy")
        tensors = load_file(str(path))
        return cls(
            language,
            FeatureSettings.from_metadata(metadata),
            tensors["idf"],
            tensors["weight"],
            tensors["bias"],
            Thresholds.from_metadata(metadata),
        )
