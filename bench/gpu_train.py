"""Training throughput of the default architecture (Gemma 3 270M) on a GPU, in tokens/s and MFU.

Self-contained: it imports only the project's training path (`components.modelling.loss`,
torch and transformers; no prefect, mlflow, datasets or pydantic), builds the architecture
from its config with random weights (no download, no wheels), and times full training steps
(forward, chunked cross-entropy, backward, AdamW) of three variants against the first one,
measured in the same run:
- eager + AMP (fp32 weights, bf16 autocast), the baseline;
- torch.compile + AMP;
- torch.compile, pure bf16 weights.
Model FLOPs per token are 6 × parameters + 12 × layers × seq × (heads × head_dim)
(the attention score and value products); MFU divides achieved FLOP/s by a peak measured
here with a large bf16 matmul. Prints a table and writes bench/results/gpu_train.json. Without
a GPU it says so and exits 0.

    python bench/gpu_train.py [--seq 1024] [--batch 8] [--steps 12]
    python bench/gpu_train.py --tiny      # the same code on a CPU, with a tiny config, as a check
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.modelling.loss import CausalLMLoss  # noqa: E402

# google/gemma-3-270m's text config, as the packaged GGUF states it.
GEMMA3_270M = {
    "vocab_size": 262144,
    "hidden_size": 640,
    "intermediate_size": 2048,
    "num_hidden_layers": 18,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "max_position_embeddings": 32768,
    "sliding_window": 512,
}
TINY = {
    "vocab_size": 4096,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "query_pre_attn_scalar": 32,
    "max_position_embeddings": 512,
    "sliding_window": 128,
}


def peak_flops(device: torch.device, dtype: torch.dtype) -> float:
    """Achieved FLOP/s of a large square matmul: the practical ceiling MFU is measured against."""
    size = 8192 if device.type == "cuda" else 512
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    repeats = 20 if device.type == "cuda" else 5
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def bench_device(tiny: bool, what: str) -> torch.device | None:
    """The GPU; the CPU for a `--tiny` check; None (having said why) when there is no GPU for a full run."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if tiny:
        return torch.device("cpu")
    print(f"no GPU here: {what} (use --tiny to check the script on a CPU)")
    return None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def flops_per_token(config: Gemma3TextConfig, parameters: int, seq: int) -> float:
    attention = 12 * config.num_hidden_layers * seq * config.num_attention_heads * config.head_dim
    return 6 * parameters + attention


def measure(variant: str, config: Gemma3TextConfig, args: argparse.Namespace, device: torch.device) -> dict:
    """Tokens/s over `args.steps` timed training steps after `args.warmup` untimed ones."""
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).to(device)
    model.config._attn_implementation = "sdpa"
    pure_bf16 = variant == "compile + pure bf16"
    if pure_bf16:
        model = model.to(torch.bfloat16)
    loss_module = CausalLMLoss(model, chunk_size=args.loss_chunk)
    step_loss = torch.compile(loss_module) if variant.startswith("compile") else loss_module
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    amp = device.type == "cuda" and not pure_bf16
    tokens = torch.randint(0, config.vocab_size, (args.batch, args.seq), device=device)

    def one_step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            nll, count = step_loss(tokens, tokens)
            loss = nll / count
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    for _ in range(args.warmup):
        one_step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        last_loss = one_step()
    synchronize(device)
    elapsed = time.perf_counter() - started
    parameters = sum(p.numel() for p in model.parameters())
    rate = args.batch * args.seq * args.steps / elapsed
    return {
        "variant": variant,
        "tokens_per_s": rate,
        "parameters": parameters,
        "loss": last_loss,
        "model_flops_per_s": rate * flops_per_token(config, parameters, args.seq),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--loss-chunk", type=int, default=8192, help="positions per cross-entropy chunk")
    parser.add_argument("--tiny", action="store_true", help="tiny config (a CPU check of this script)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/gpu_train.json")
    args = parser.parse_args()
    device = bench_device(args.tiny, "bench/gpu_train.py measures GPU training")
    if device is None:
        return
    config = Gemma3TextConfig(**(TINY if args.tiny else GEMMA3_270M))
    peak = peak_flops(device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    results = []
    for variant in ("eager + AMP", "compile + AMP", "compile + pure bf16"):
        result = measure(variant, config, args, device)
        result["mfu"] = result["model_flops_per_s"] / peak
        results.append(result)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    baseline = results[0]["tokens_per_s"]
    print(f"{'variant':<22} {'tokens/s':>12} {'× eager':>8} {'MFU':>7}")
    for result in results:
        result["speedup_vs_eager_amp"] = result["tokens_per_s"] / baseline
        print(
            f"{result['variant']:<22} {result['tokens_per_s']:>12,.0f} {result['speedup_vs_eager_amp']:>8.2f} "
            f"{result['mfu']:>7.1%}"
        )
    record = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "seq": args.seq,
        "batch": args.batch,
        "steps": args.steps,
        "tiny": args.tiny,
        "measured_peak_flops": peak,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"measured peak {peak / 1e12:.1f} TFLOP/s; results in {args.out}")


if __name__ == "__main__":
    main()
