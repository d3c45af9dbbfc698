"""A tiny Gemma-3-shaped model and tokenizer, built from config in a second, for code-level tests."""

from pathlib import Path

import pytest

from components.config import AdapterConfig, TinyArchitecture, TrainingConfig
from components.modelling.base_model import build_tiny, train_tokenizer
from tests.conftest import PROJECT_ROOT

SAMPLE_QA = [PROJECT_ROOT / "data/sample_qa/en.jsonl", PROJECT_ROOT / "data/sample_qa/zh.jsonl"]
ARCHITECTURE = TinyArchitecture(
    vocab_size=600, hidden_size=32, intermediate_size=64, layers=2, heads=2, kv_heads=1, head_dim=16, context=256
)


def training_config(**changes: object) -> TrainingConfig:
    fields = {
        "block_size": 64,
        "micro_batch_size": 2,
        "gradient_accumulation": 2,
        "max_steps": 6,
        "learning_rate": 3e-3,
        "min_learning_rate": 3e-4,
        "warmup_steps": 2,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "loss_chunk_size": 32,
        "checkpoint_every": 2,
        "seed": 0,
        "adapter": AdapterConfig(
            method="full", rank=4, alpha=8, dropout=0.0, targets=["q_proj"], freeze_embeddings=False
        ),
    }
    return TrainingConfig(**{**fields, **changes})


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return train_tokenizer(SAMPLE_QA, ARCHITECTURE.vocab_size)


@pytest.fixture
def tiny_model(tiny_tokenizer):
    """A fresh, seeded tiny model per test (tests train it in place)."""
    return build_tiny(ARCHITECTURE, tiny_tokenizer, seed=0)


def corpus_examples(tokenizer, block_size: int = 64, blocks: int = 12) -> list[dict[str, list[int]]]:
    """Fixed blocks of the sample answers: pretraining-style examples without datasets or files."""
    from components.qa_data import load_qa

    stream = [
        token for path in SAMPLE_QA for pair in load_qa(Path(path)) for token in tokenizer(pair.answer)["input_ids"]
    ]
    return [
        {"input_ids": stream[i : i + block_size], "labels": stream[i : i + block_size]}
        for i in range(0, blocks * block_size, block_size)
    ]
