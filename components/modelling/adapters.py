"""Which weights train: full fine-tuning (optionally with frozen embeddings) or LoRA via peft.

With Gemma 3's 262k-token vocabulary, about 170M of its 268M parameters are the (tied)
embeddings; freezing them, or training LoRA adapters only, keeps a CPU step affordable.
LoRA adapters are merged back for export, so every saved model is a plain checkpoint.
"""

from torch import nn
from transformers import PreTrainedModel

from components.config import AdapterConfig
from components.errors import PsyllmError


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


def merged(model: nn.Module) -> PreTrainedModel:
    """A plain transformers model: LoRA adapters folded into the weights, or the model itself."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters the optimiser updates, by name: what a checkpoint must hold."""
    return {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
