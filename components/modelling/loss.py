"""Causal-LM loss that never holds the whole [tokens × vocabulary] logits tensor.

Gemma 3's 262k-token vocabulary makes the output layer most of the CPU cost and most of the
activation memory: a 512-token block would need 512 MB of fp32 logits, twice over for the
backward pass. `CausalLMLoss` runs the decoder body once, then projects and scores the
hidden states chunk by chunk, each chunk under activation checkpointing, so only one
chunk's logits exist at a time. It is an `nn.Module` so DDP can wrap it for multi-process
training. It imports only torch, so the GPU benchmark can use it without the rest.
"""

import torch
from torch import nn
from torch.nn import functional
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100


def _chunk_nll(hidden: torch.Tensor, targets: torch.Tensor, head: nn.Module, softcap: float | None) -> torch.Tensor:
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return functional.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum")


class CausalLMLoss(nn.Module):
    """Summed next-token NLL over the labelled positions, plus how many positions were labelled.

    `labels` hold the token to predict at each position's *next* step, as in Hugging Face
    (shifted inside); positions labelled IGNORE_INDEX (prompts, padding) do not count.
    """

    def __init__(self, causal_lm: nn.Module, chunk_size: int) -> None:
        super().__init__()
        self.causal_lm = causal_lm
        self.chunk_size = chunk_size

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        language_model = self.causal_lm
        if hasattr(language_model, "get_base_model"):  # a peft wrapper: the LoRA layers sit inside
            language_model = language_model.get_base_model()
        hidden = language_model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        head = language_model.get_output_embeddings()
        softcap = getattr(language_model.config, "final_logit_softcapping", None)
        hidden = hidden[:, :-1].reshape(-1, hidden.shape[-1])
        targets = labels[:, 1:].reshape(-1)
        keep = targets != IGNORE_INDEX
        hidden, targets = hidden[keep], targets[keep]
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, targets.numel(), self.chunk_size):
            piece = slice(start, start + self.chunk_size)
            if torch.is_grad_enabled():
                total = total + checkpoint(
                    _chunk_nll, hidden[piece], targets[piece], head, softcap, use_reentrant=False
                )
            else:
                total = total + _chunk_nll(hidden[piece], targets[piece], head, softcap)
        return total, keep.sum()
