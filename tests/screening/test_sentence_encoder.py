"""Code layer: one encoder pass per message gives the whole message's embedding and its windows'."""

import numpy as np
import pytest

from components.screening.sentence_encoder import MAX_TOKENS, _model, embed
from components.screening.units import Units


def encoded_alone(text: str) -> np.ndarray:
    """The encoder's own sentence embedding of a text read by itself: mean over [CLS] tokens [SEP]."""
    import torch

    tokenizer, model = _model()
    batch = tokenizer([text], return_tensors="pt", truncation=True, max_length=MAX_TOKENS)
    with torch.inference_mode():
        pooled = model(**batch).last_hidden_state.float().mean(dim=1)[0].numpy()
    return pooled / np.linalg.norm(pooled)


@pytest.fixture(autouse=True)
def fp32(monkeypatch):
    """Compare in fp32 so the check does not depend on the CPU's bf16 rounding."""
    monkeypatch.setattr("components.hardware.native_bf16", lambda: False)


def test_a_whole_message_is_embedded_as_the_encoder_pools_it():
    texts = ["i can't sleep and work is hard.", "i am going to end my life tonight."]
    embeddings = embed(Units.of(texts))
    for text, embedding in zip(texts, embeddings, strict=True):
        assert np.allclose(embedding, encoded_alone(text), atol=1e-4)


def test_windows_are_read_in_context_and_a_long_message_is_read_to_its_end():
    ordinary = "my day at work was long and my manager asked me to stay late again."
    message = " ".join([ordinary] * 40 + ["i have the pills here and i will take them all tonight."])
    units = Units.of([message])
    tokenizer, _ = _model()
    assert len(tokenizer(message, verbose=False)["input_ids"]) > 2 * MAX_TOKENS  # read in several segments
    embeddings = embed(units)
    assert embeddings.shape == (len(units.texts), 384)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    last_window, ordinary_window = embeddings[-1], embeddings[1]
    last_alone = encoded_alone(units.texts[-1])
    # The window at the very end holds its own sentences' meaning: closer to that text read alone
    # than an ordinary window is, yet not identical (its tokens saw the message around them).
    assert last_window @ last_alone > ordinary_window @ last_alone
    assert not np.allclose(last_window, last_alone, atol=1e-3)
