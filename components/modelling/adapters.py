"""Which weights train: full fine-tuning (optionally with frozen embeddings) or LoRA via peft.

With Gemma 3's 262k-token vocabulary, about 170M of its 268M parameters are the (tied)
embeddings; freezing them, or training LoRA adapters only, keeps a CPU step affordable.
Under LoRA the frozen weights are held in bf16 where the hardware computes it (`frozen_dtype`)
while the adapters and their optimiser stay fp32: the step's matrix products and its
262k-way output layer then run on the bf16 units. The adapters are merged into the source's
fp32 weights for export (`merged`), so every saved model is a plain fp32 checkpoint whose
untrained weights are the source's, bit for bit.
"""

from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel

from components.config import AdapterConfig
from components.errors import PsyllmError
from components.hardware import inference_dtype
from components.modelling.base_model import load_model


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct last-name parts of the model's linear layers: what LoRA may target."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)})


def apply_adapter(model: PreTrainedModel, adapter: AdapterConfig, field: str) -> nn.Module:
    """The model ready to train under `adapter`; `field` names the config section in errors."""
    if adapter.method == "lora":
        allowed = linear_module_names(model)
        unknown = [target for target in adapter.targets if target not in allowed]
        if unknown or not adapter.targets:
            raise PsyllmError(
                f"{field}.targets: {unknown or adapter.targets} not linear layers of this model; "
                f"allowed: {', '.join(allowed)}"
            )
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=adapter.rank, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout, target_modules=adapter.targets
        )
        return get_peft_model(model, lora)
    model.requires_grad_(True)
    if adapter.freeze_embeddings:
        model.get_input_embeddings().requires_grad_(False)
        model.get_output_embeddings().requires_grad_(False)
    return model


def frozen_dtype(adapter: AdapterConfig, device: torch.device) -> torch.dtype:
    """The dtype to load a model in for training under `adapter` on `device`.

    LoRA leaves the loaded weights frozen, so they can be bf16 where `device` computes it in
    hardware (peft keeps the adapters fp32); full fine-tuning updates them, so they stay fp32.
    """
    return inference_dtype(device) if adapter.method == "lora" else torch.float32


def merged(model: nn.Module, source: str | Path) -> PreTrainedModel:
    """A plain fp32 transformers model: the trained adapters folded into `source`'s fp32 weights.

    The adapters are copied onto a fresh fp32 load of `source` before merging, so a model
    trained over bf16 frozen weights loses nothing to bf16 rounding, in its base weights or in
    the small update the merge adds to them. Without adapters, the model itself.
    """
    if not hasattr(model, "merge_and_unload"):
        return model
    from peft import get_peft_model

    full_precision = get_peft_model(load_model(source)[0], model.peft_config["default"])
    adapters = full_precision.state_dict()
    with torch.no_grad():
        for name, parameter in trainable_parameters(model).items():
            adapters[name].copy_(parameter)
    return full_precision.merge_and_unload()


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters the optimiser updates, by name: what a checkpoint must hold."""
    return {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
