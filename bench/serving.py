"""Serving over HTTP: requests/s and latency at 1, 4 and 16 concurrent clients, against plain `generate`.

The candidate is the real `psyllm serve` on loopback (screening, the request queue, continuous
batching, the store), driven by locust: each client posts one fixed question to `/answer` with
`--max-new-tokens`, waits for the answer and asks again, for `--seconds` after a short warm-up.
The baseline is the same model folder answering the same prompt one request at a time through
Hugging Face's `generate` in this process (greedy, the stored decoding settings, no server), as a
user without the service would: in fp32, as `from_pretrained` loads it. `serving_speedup` =
requests/s at the most clients / baseline requests/s. The same `generate` in the precision the
service decodes in (`hardware.inference_dtype`: bf16 on a CPU with bf16 units) is reported too,
so the gain of batching is told apart from the gain of precision. Answers are greedy, so every
request decodes the same tokens: their count is reported.
Results go to bench/results/serving.json.

    .venv/bin/python bench/serving.py --model data/models/finetuned/pretrained --screener data/screener
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import gevent
import torch
from locust import HttpUser, constant, events, task  # importing locust patches sockets for gevent
from locust.env import Environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from served import start_serve  # noqa: E402

from components.hardware import inference_dtype, machine  # noqa: E402

QUESTION = "How can I stop worrying so much at night?"


def baseline_seconds(folder: Path, max_new_tokens: int, repeats: int, dtype: "torch.dtype") -> tuple[float, int]:
    """Median seconds per answer of plain `generate`, one request at a time, and the new tokens per answer."""
    from components.modelling.base_model import load_model
    from components.modelling.prompt import PromptTemplate, encode_prompt
    from components.modelling.stored_generation import load_generation

    model, tokenizer = load_model(folder, dtype)
    generation = load_generation(folder)
    prompt = torch.tensor([encode_prompt(tokenizer, PromptTemplate.load(folder), QUESTION, "", "en")])
    settings = {"max_new_tokens": max_new_tokens, "do_sample": False, "pad_token_id": tokenizer.pad_token_id,
                "repetition_penalty": generation.repetition_penalty}  # fmt: skip
    timings, new_tokens = [], 0
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first call warms up and is not counted
            started = time.perf_counter()
            output = model.generate(prompt, attention_mask=torch.ones_like(prompt), **settings)
            timings.append(time.perf_counter() - started)
            new_tokens = output.shape[1] - prompt.shape[1]
    timings = sorted(timings[1:])
    return timings[len(timings) // 2], new_tokens


def client_class(max_new_tokens: int) -> type[HttpUser]:
    class Asker(HttpUser):
        wait_time = constant(0)

        @task
        def ask(self) -> None:
            self.client.post("/answer", json={"question": QUESTION, "max_new_tokens": max_new_tokens})

    return Asker


def measure_clients(host: str, clients: int, max_new_tokens: int, warmup_s: float, seconds: float) -> dict:
    """Requests/s and latency percentiles of `clients` closed-loop clients over `seconds`."""
    environment = Environment(user_classes=[client_class(max_new_tokens)], events=events, host=host)
    runner = environment.create_local_runner()
    runner.start(user_count=clients, spawn_rate=clients)
    gevent.sleep(warmup_s)
    environment.stats.reset_all()
    gevent.sleep(seconds)
    total = environment.stats.total
    result = {
        "clients": clients,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "requests_per_s": round(total.num_requests / seconds, 3),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
    }
    runner.quit()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a fine-tuned model folder")
    parser.add_argument("--screener", type=Path, required=True, help="a trained screener folder")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per client count")
    parser.add_argument("--warmup-seconds", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="baseline answers timed")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/serving.json")
    args = parser.parse_args()

    baseline_s, new_tokens = baseline_seconds(args.model, args.max_new_tokens, args.repeats, torch.float32)
    served_dtype = inference_dtype(torch.device("cpu"))
    same_precision_s, _ = baseline_seconds(args.model, args.max_new_tokens, args.repeats, served_dtype)
    server, host = start_serve(args.model, args.screener, "psyllm-serving-bench-")
    try:
        levels = [
            measure_clients(host, clients, args.max_new_tokens, args.warmup_seconds, args.seconds)
            for clients in args.clients
        ]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    most, single = levels[-1], levels[0]
    result = {
        "machine": machine(),
        "model": str(args.model),
        "question": QUESTION,
        "max_new_tokens": args.max_new_tokens,
        "new_tokens_per_answer": new_tokens,
        "baseline": {
            "what": "plain generate in fp32, one request at a time",
            "seconds_per_answer": round(baseline_s, 5),
            "requests_per_s": round(1 / baseline_s, 3),
        },
        "same_precision_generate": {
            "what": f"plain generate in {served_dtype}, the service's precision here, one request at a time",
            "seconds_per_answer": round(same_precision_s, 5),
            "requests_per_s": round(1 / same_precision_s, 3),
        },
        "levels": levels,
        "serving_speedup": round(most["requests_per_s"] * baseline_s, 2),
        "speedup_over_same_precision_generate": round(most["requests_per_s"] * same_precision_s, 2),
        "p95_over_single_client": round(most["p95_ms"] / single["p95_ms"], 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"baseline: plain generate in fp32, {baseline_s:.2f} s per answer ({1 / baseline_s:.2f} requests/s); "
          f"in {served_dtype}, {same_precision_s:.2f} s")  # fmt: skip
    print("| clients | requests/s | p50 ms | p95 ms | failures |\n|---|---|---|---|---|")
    for level in levels:
        print(f"| {level['clients']} | {level['requests_per_s']} | {level['p50_ms']} | {level['p95_ms']} "
              f"| {level['failures']} |")  # fmt: skip
    print(f"serving_speedup at {most['clients']} clients: {result['serving_speedup']}× "
          f"({result['speedup_over_same_precision_generate']}× over generate in {served_dtype}); "
          f"p95 {result['p95_over_single_client']}× the single client's; written to {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
