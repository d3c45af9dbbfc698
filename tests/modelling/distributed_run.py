"""Train the tiny model once, as `torchrun` runs it (one rank of several) or as a single process.

Usage: python distributed_run.py CHECKPOINT_DIR GRADIENT_ACCUMULATION. Run under torchrun with
accumulation 1 per rank, or alone with accumulation = the number of ranks: both read the
same examples per step, so both must reach the same weights.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from components.modelling.base_model import build_tiny, train_tokenizer
from components.modelling.train_loop import train
from tests.modelling.conftest import ARCHITECTURE, SAMPLE_QA, corpus_examples, training_config

if __name__ == "__main__":
    checkpoints, accumulation = Path(sys.argv[1]), int(sys.argv[2])
    tokenizer = train_tokenizer(SAMPLE_QA, ARCHITECTURE.vocab_size)
    model = build_tiny(ARCHITECTURE, tokenizer, seed=0)
    config = training_config(max_steps=4, checkpoint_every=4, gradient_accumulation=accumulation)
    train(model, corpus_examples(tokenizer), config, tokenizer.pad_token_id, checkpoints, "distributed")
