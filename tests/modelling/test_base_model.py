"""Model loading: the gguf_file= path (on a tiny GGUF written here), the tiny model, and bad params."""

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from components.config import ModelConfig, TrainingConfig
from components.errors import PsyllmError
from components.modelling.base_model import load_model, resolve_base
from components.modelling.trained import check_block_size
from tests.modelling.conftest import ARCHITECTURE, SAMPLE_QA, training_config
from tests.modelling.gguf_writer import gemma3_tokens, write_gemma3_gguf


def test_a_gguf_file_loads_converts_once_and_matches_the_original(tmp_path):
    tokens = gemma3_tokens()
    torch.manual_seed(0)
    original = Gemma3ForCausalLM(
        Gemma3TextConfig(
            vocab_size=len(tokens),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            max_position_embeddings=256,
            sliding_window=64,
        )
    ).eval()
    gguf_path = tmp_path / "tiny-gemma3.gguf"
    write_gemma3_gguf(original, gguf_path)
    cache = tmp_path / "cache"

    converted = resolve_base(ModelConfig(base=str(gguf_path), tiny=None, seed=0, cpu_threads=None), cache, [])
    assert not list(cache.glob("*.gguf")) and (cache / converted.rsplit("/", 1)[-1] / "model.safetensors").is_file()
    model, tokenizer = load_model(converted)
    ids = tokenizer("I feel anxious 心理咨询", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, original(ids).logits, atol=1e-5)
    assert tokenizer.decode(ids[0], skip_special_tokens=True) == "I feel anxious 心理咨询"

    stamp = (cache / converted.rsplit("/", 1)[-1] / "model.safetensors").stat().st_mtime_ns
    assert resolve_base(ModelConfig(base=str(gguf_path), tiny=None, seed=0, cpu_threads=None), cache, []) == converted
    assert (cache / converted.rsplit("/", 1)[-1] / "model.safetensors").stat().st_mtime_ns == stamp


def test_the_tiny_model_is_built_once_per_config_and_corpus(tmp_path):
    config = ModelConfig(base="tiny", tiny=ARCHITECTURE, seed=0, cpu_threads=None)
    first = resolve_base(config, tmp_path, SAMPLE_QA)
    assert resolve_base(config, tmp_path, SAMPLE_QA) == first
    other = resolve_base(config.model_copy(update={"seed": 1}), tmp_path, SAMPLE_QA)
    assert other != first
    model, tokenizer = load_model(first)
    assert model.config.hidden_size == ARCHITECTURE.hidden_size and len(tokenizer) <= ARCHITECTURE.vocab_size
    assert tokenizer.decode(tokenizer("焦虑 anxiety")["input_ids"]) == "焦虑 anxiety"


@pytest.mark.parametrize("base", ["no-such-model", "missing/file.gguf", "a/b/c"])
def test_an_unknown_base_model_names_the_field_and_the_choices(base, tmp_path):
    with pytest.raises(PsyllmError, match=r"model\.base: .*(tiny|not found)"):
        resolve_base(ModelConfig(base=base, tiny=None, seed=0, cpu_threads=None), tmp_path, [])


def test_a_hub_id_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = resolve_base(
        ModelConfig(base="psyllm-test/not-a-model", tiny=None, seed=0, cpu_threads=None), tmp_path, []
    )
    with pytest.raises(PsyllmError, match=r"model\.base: cannot load 'psyllm-test/not-a-model'.*Hugging Face id"):
        load_model(source)


def test_tiny_needs_its_architecture():
    with pytest.raises(ValueError, match=r"model\.tiny: required"):
        ModelConfig(base="tiny", tiny=None, seed=0, cpu_threads=None)


def test_a_block_over_the_context_names_the_field_and_the_range():
    config: TrainingConfig = training_config(block_size=4096)
    with pytest.raises(
        PsyllmError, match=r"pretrain\.training\.block_size: 4096 .* context of 256 .*allowed: 1 to 256"
    ):
        check_block_size(config, 256, "pretrain.training")
