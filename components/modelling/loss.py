"""Causal-LM loss that never holds the whole [tokens × vocabulary] logits tensor.

Gemma 3's 262k-token vocabulary makes the output layer most of the CPU cost and most of the
activation memory: a 512-token block would need 512 MB of fp32 logits, twice over for the
backward pass. `CausalLMLoss` runs the decoder body once, then projects and scores only the
labelled positions, chunk by chunk, so only one chunk's logits exist at a time. When training,
each chunk's gradients (for the hidden states, and for the output layer when it trains) are
computed right there from its logits, which are then dropped (`_ChunkedHeadNLL`): the output
layer runs once forward and once backward, as in a plain loop, where recomputing each chunk
under activation checkpointing ran it forward twice (measured by bench/train_overhead.py).
It is an `nn.Module` so DDP can wrap it for multi-process training. It imports only torch, so
the GPU benchmark can use it without the rest.
"""

import torch
from torch import nn
from torch.nn import functional

IGNORE_INDEX = -100


def _chunk_logits(
    hidden: torch.Tensor, head: nn.Linear, softcap: float | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fp32 logits of one chunk (soft-capped as the model does) and, when capped, the tanh for its derivative."""
    logits = functional.linear(hidden.to(head.weight.dtype), head.weight, head.bias).float()
    if not softcap:
        return logits, None
    squashed = torch.tanh(logits / softcap)
    return squashed * softcap, squashed


def _nll_and_logit_gradients(
    rows: torch.Tensor, wanted: torch.Tensor, head: nn.Linear, softcap: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk's summed NLL and d NLL / d logits (before the soft-cap), written over its fp32 logits.

    On a CPU the passes over the [rows × 262k] logits, not the products, are most of the output
    layer's cost once it runs in bf16, so each pass is made once and in place: shift by the row
    maximum, exponentiate, normalise, subtract the one-hot target. d NLL / d logits is
    softmax(logits) - one_hot(target), times the soft-cap's derivative (1 - tanh²) when capped.
    """
    logits, squashed = _chunk_logits(rows, head, softcap)
    logits -= logits.amax(dim=-1, keepdim=True)
    target_logits = logits.gather(1, wanted[:, None]).squeeze(1)
    probabilities = logits.exp_()
    normaliser = probabilities.sum(dim=-1)
    nll = (normaliser.log() - target_logits).sum()
    probabilities /= normaliser[:, None]
    probabilities[torch.arange(wanted.numel(), device=wanted.device), wanted] -= 1
    if squashed is not None:
        probabilities *= 1 - squashed.square_()
    return nll, probabilities


class _ChunkedHeadNLL(torch.autograd.Function):
    """Summed NLL of the output layer over (hidden, target) rows; gradients found chunk by chunk in forward.

    The hidden states' gradient is d NLL / d logits times the weight, and the weight's (and
    bias's), when they train, the transposed product with the hidden states.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        head: nn.Linear,
        chunk_size: int,
        softcap: float | None,
    ) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if weight.requires_grad else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None and bias.requires_grad else None
        for start in range(0, targets.numel(), chunk_size):
            piece = slice(start, start + chunk_size)
            rows = hidden[piece]
            nll, grad_logits = _nll_and_logit_gradients(rows, targets[piece], head, softcap)
            total += nll
            grad_hidden[piece] = (grad_logits.to(weight.dtype) @ weight).to(hidden.dtype)
            if grad_weight is not None:
                grad_weight += grad_logits.T @ rows.float()
            if grad_bias is not None:
                grad_bias += grad_logits.sum(0)
        ctx.save_for_backward(grad_hidden)
        ctx.parameter_grads = (grad_weight, grad_bias)
        return total

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_total: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        (grad_hidden,) = ctx.saved_tensors
        grad_weight, grad_bias = ctx.parameter_grads
        scaled = [None if grad is None else grad * grad_total for grad in (grad_weight, grad_bias)]
        return grad_hidden * grad_total.to(grad_hidden.dtype), *scaled, None, None, None, None


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
        hidden, targets, _ = self._labelled(input_ids, labels, attention_mask)
        if torch.is_grad_enabled():
            head, softcap = self._head()
            total = _ChunkedHeadNLL.apply(hidden, head.weight, head.bias, targets, head, self.chunk_size, softcap)
            return total, targets.new_tensor(targets.numel())
        return self._token_nll(hidden, targets).sum(), targets.new_tensor(targets.numel())

    @torch.no_grad()
    def per_row(
        self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's summed NLL and labelled-token count: evaluation scores padded batches of answers."""
        hidden, targets, rows = self._labelled(input_ids, labels, attention_mask)
        totals = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=hidden.device)
        return totals.index_add_(0, rows, self._token_nll(hidden, targets)), torch.bincount(
            rows, minlength=input_ids.shape[0]
        )

    def _language_model(self) -> nn.Module:
        language_model = self.causal_lm
        if hasattr(language_model, "get_base_model"):  # a peft wrapper: the LoRA layers sit inside
            language_model = language_model.get_base_model()
        return language_model

    def _head(self) -> tuple[nn.Linear, float | None]:
        language_model = self._language_model()
        return language_model.get_output_embeddings(), getattr(language_model.config, "final_logit_softcapping", None)

    def _labelled(
        self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The decoder's hidden states at the labelled positions, their targets, and the row each came from."""
        decoded = self._language_model().get_decoder()(input_ids=input_ids, attention_mask=attention_mask)
        hidden = decoded.last_hidden_state[:, :-1].reshape(-1, decoded.last_hidden_state.shape[-1])
        targets = labels[:, 1:].reshape(-1)
        keep = targets != IGNORE_INDEX
        rows = torch.arange(labels.shape[0], device=labels.device).repeat_interleave(labels.shape[1] - 1)
        return hidden[keep], targets[keep], rows[keep]

    def _token_nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each labelled position's NLL (fp32), projected chunk by chunk."""
        head, softcap = self._head()
        pieces = [
            functional.cross_entropy(
                _chunk_logits(hidden[start : start + self.chunk_size], head, softcap)[0],
                targets[start : start + self.chunk_size],
                reduction="none",
            )
            for start in range(0, targets.numel(), self.chunk_size)
        ]
        return torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
