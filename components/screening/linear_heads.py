"""Each language's learned part: logistic-regression heads over that language's features.

Features are hashed n-gram TF-IDF, plus frozen sentence embeddings where a good encoder
exists (params.yaml `screening.features`). English: word n-grams (exact slang and phrasing)
beside all-MiniLM-L6-v2 embeddings (meaning). Chinese: character n-grams only; MiniLM's
vocabulary is English (most Chinese characters are unknown to it), and Chinese has no
spaces, characters carry meaning, and the figurative 死 idioms (笑死, 累死) differ from
crisis phrases by a neighbouring character, which an n-gram sees. Hashing keeps the
vocabulary out of the artefact, which holds only weights, the IDF vector and thresholds
(safetensors, no pickle).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from components.errors import PsyllmError
from components.screening.decide import HEADS, Thresholds, artefact_metadata
from components.screening.labelled import Language
from components.screening.sentence_encoder import embed


@dataclass(frozen=True)
class FeatureSettings:
    """What one language's heads read; stored in the artefact's header."""

    analyzer: Literal["char", "word"]
    ngram_max: int
    buckets: int
    sentence_embedding: bool

    def as_metadata(self) -> dict[str, str]:
        return {
            "analyzer": self.analyzer,
            "ngram_max": str(self.ngram_max),
            "buckets": str(self.buckets),
            "sentence_embedding": str(self.sentence_embedding),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> "FeatureSettings":
        analyzer = metadata["analyzer"]
        if analyzer not in ("char", "word"):
            raise PsyllmError(f"screener artefact: unknown analyzer {analyzer!r}")
        return cls(
            analyzer, int(metadata["ngram_max"]), int(metadata["buckets"]), metadata["sentence_embedding"] == "True"
        )


def _counts(texts: list[str], settings: FeatureSettings) -> sparse.csr_matrix:
    vectorizer = HashingVectorizer(
        analyzer=settings.analyzer,
        ngram_range=(1, settings.ngram_max),
        n_features=settings.buckets,
        alternate_sign=False,
        norm=None,
        lowercase=False,
        token_pattern=r"(?u)\b\w+\b" if settings.analyzer == "word" else None,
    )
    return vectorizer.transform(texts).astype(np.float32)


def fit_idf(folded_texts: list[str], settings: FeatureSettings) -> np.ndarray:
    """The IDF learned from training messages, one float per hash bucket."""
    return TfidfTransformer(sublinear_tf=True).fit(_counts(folded_texts, settings)).idf_.astype(np.float32)


def features(
    folded_texts: list[str], settings: FeatureSettings, idf: np.ndarray, embeddings: np.ndarray | None = None
) -> sparse.csr_matrix:
    """[sentence embedding |] sublinear TF-IDF (L2-normalised). Pass embeddings to reuse them."""
    counts = _counts(folded_texts, settings)
    counts.data = 1.0 + np.log(counts.data)
    tfidf = normalize(counts @ sparse.diags(idf)).tocsr()
    if not settings.sentence_embedding:
        return tfidf
    dense = embed(folded_texts) if embeddings is None else embeddings
    return sparse.hstack([sparse.csr_matrix(dense), tfidf]).tocsr()


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic-regression logits to probabilities."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits)))


def fit_head(inputs: sparse.csr_matrix, targets: np.ndarray, regularisation: float) -> tuple[np.ndarray, float]:
    """One balanced logistic-regression head: (weights, bias)."""
    if targets.min() == targets.max():
        raise PsyllmError("a screening head has only one class in its training data; add labelled examples")
    model = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=5000)
    model.fit(inputs, targets)
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
        self.weight = weight  # (len(HEADS), features)
        self.bias = bias  # (len(HEADS),)
        self.thresholds = thresholds

    @classmethod
    def fit(
        cls,
        language: Language,
        folded_texts: list[str],
        targets: np.ndarray,
        settings: FeatureSettings,
        regularisation: float,
        thresholds: Thresholds,
        embeddings: np.ndarray | None = None,
    ) -> "LinearHeads":
        idf = fit_idf(folded_texts, settings)
        inputs = features(folded_texts, settings, idf, embeddings)
        fitted = [fit_head(inputs, targets[:, head], regularisation) for head in range(len(HEADS))]
        weight = np.stack([weights for weights, _ in fitted])
        bias = np.asarray([bias for _, bias in fitted], dtype=np.float32)
        return cls(language, settings, idf, weight, bias, thresholds)

    def probabilities_for(self, folded_texts: list[str]) -> np.ndarray:
        """(messages, heads) probabilities."""
        logits = features(folded_texts, self.settings, self.idf) @ self.weight.T + self.bias
        return sigmoid(logits)

    @staticmethod
    def path(folder: Path, language: Language) -> Path:
        return folder / f"{language}.safetensors"

    def save(self, folder: Path) -> None:
        save_file(
            {"weight": self.weight, "bias": self.bias, "idf": self.idf},
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
