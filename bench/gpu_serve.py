"""Decoding throughput of the default architecture (Gemma 3 270M) on a GPU, at batch 1 and 32, in new tokens/s.

Self-contained: it imports only the project's decoding loop (`components.modelling.decoding`,
torch and transformers; no prefect, mlflow, pydantic or BentoML), builds the architecture from
its config with random weights in bf16 (no download, no wheels), and decodes greedily through
`DecodingBatch`, the loop `psyllm serve` and `psyllm evaluate` run, with every row running to
`--new-tokens` (no EOS). The baseline is Hugging Face's `generate` on the same model, prompts
and batch, measured in the same run; `ratio` is the loop's tokens/s over `generate`'s. A
third row times the service's way of filling a batch: rows joining a running batch one by one
(continuous batching) instead of all at once. Prints a table and writes
bench/results/gpu_serve.json. Without a GPU it says so and exits 0.

    python bench/gpu_serve.py [--prompt 128] [--new-tokens 128] [--batches 1 32]
    python bench/gpu_serve.py --tiny      # the same code on a CPU, with a tiny config, as a check
"""

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GenerationConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from gpu_train import GEMMA3_270M, TINY, bench_device, synchronize  # noqa: E402

from components.modelling.decoding import DecodingBatch  # noqa: E402

GREEDY = SimpleNamespace(do_sample=False, temperature=1.0, top_p=1.0, repetition_penalty=1.0)
NO_EOS = -1


Decoder = Callable[[Gemma3ForCausalLM, list[list[int]], int], int]  # model, prompts, new tokens → tokens made


@torch.inference_mode()
def timed(decode: Decoder, model: Gemma3ForCausalLM, prompts: list[list[int]], new_tokens: int) -> tuple[int, float]:
    """New tokens made by one timed run, after one untimed run (allocator, kernels), and their rate."""
    decode(model, prompts, new_tokens)
    synchronize(model.device)
    started = time.perf_counter()
    made = decode(model, prompts, new_tokens)
    synchronize(model.device)
    return made, made / (time.perf_counter() - started)


def loop_all_at_once(model: Gemma3ForCausalLM, prompts: list[list[int]], new_tokens: int) -> int:
    batch: DecodingBatch[int] = DecodingBatch(model, GREEDY, pad_token_id=0, eos_token_id=NO_EOS)
    emitted = len(batch.add(list(range(len(prompts))), prompts, [new_tokens] * len(prompts), lambda row: False).emitted)
    while batch:
        emitted += len(batch.step(lambda row: False).emitted)
    return emitted


def loop_joining(model: Gemma3ForCausalLM, prompts: list[list[int]], new_tokens: int) -> int:
    """Rows join a running batch one per step, as requests reach the service one after another."""
    batch: DecodingBatch[int] = DecodingBatch(model, GREEDY, pad_token_id=0, eos_token_id=NO_EOS)
    emitted = 0
    for row, prompt in enumerate(prompts):
        emitted += len(batch.add([row], [prompt], [new_tokens], lambda key: False).emitted)
        emitted += len(batch.step(lambda key: False).emitted)
    while batch:
        emitted += len(batch.step(lambda key: False).emitted)
    return emitted


def hf_generate(model: Gemma3ForCausalLM, prompts: list[list[int]], new_tokens: int) -> int:
    ids = torch.tensor(prompts, device=model.device)
    settings = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                pad_token_id=0, eos_token_id=None)  # fmt: skip
    output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=settings)
    return (output.shape[1] - ids.shape[1]) * ids.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens per row")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--tiny", action="store_true", help="tiny config (a CPU check of this script)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/gpu_serve.json")
    args = parser.parse_args()
    device = bench_device(args.tiny, "bench/gpu_serve.py measures GPU decoding")
    if device is None:
        return
    torch.manual_seed(0)
    config = Gemma3TextConfig(**(TINY if args.tiny else GEMMA3_270M))
    model = Gemma3ForCausalLM(config).to(device, torch.bfloat16).eval()
    model.config._attn_implementation = "sdpa"
    results = []
    print(f"{'batch':>5} {'loop tok/s':>11} {'generate tok/s':>15} {'ratio':>6} {'joining tok/s':>14}")
    for batch_size in args.batches:
        prompts = torch.randint(1, config.vocab_size, (batch_size, args.prompt)).tolist()
        decoders: dict[str, Decoder] = {"loop": loop_all_at_once, "generate": hf_generate, "joining": loop_joining}
        runs = {name: timed(decode, model, prompts, args.new_tokens) for name, decode in decoders.items()}
        rates = {name: rate for name, (_, rate) in runs.items()}
        result = {"batch": batch_size, **{f"{name}_tokens_per_s": round(rate, 1) for name, rate in rates.items()}}
        result["tokens_made"] = {name: made for name, (made, _) in runs.items()}
        result["ratio"] = round(rates["loop"] / rates["generate"], 3)
        results.append(result)
        print(f"{batch_size:>5} {rates['loop']:>11,.0f} {rates['generate']:>15,.0f} {result['ratio']:>6.2f} "
              f"{rates['joining']:>14,.0f}")  # fmt: skip
    record = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "dtype": "bfloat16",
        "prompt_tokens": args.prompt,
        "new_tokens": args.new_tokens,
        "tiny": args.tiny,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
