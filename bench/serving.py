"""What dynamic batching buys the service: answers per second for concurrent requests, batched vs one at a time.

The baseline is the service's own `GenerationQueue` with `batch_size` 1 (every request decoded
alone, in turn); the candidate is the same queue with `--batch-size` rows per batch. Both run
here, on the same model, prompts and greedy decoding, with `--requests` questions arriving at
once; each configuration runs `--repeats` times and the median wall time counts. Results and
their ratio go to bench/results/serving.json.

    .venv/bin/python bench/serving.py --model data/models/finetuned/pretrained [--requests 16] [--batch-size 4]
"""

import argparse
import asyncio
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from components.config import load_params
from components.modelling.base_model import load_model
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.modelling.stored_generation import load_generation
from components.serving.batching import GenerationQueue

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How can I stop worrying so much at night?",
    "I feel lonely since I moved to a new city. What can I do?",
    "How do I tell my parents that I am depressed?",
    "我最近总是失眠，怎么办？",
    "Is it normal to feel anxious before every exam?",
    "我和朋友吵架了，心里很难受。",
    "How can I support a friend who is grieving?",
    "What is cognitive behavioural therapy?",
]


async def answer_all(queue: GenerationQueue, prompts: list[list[int]], max_new_tokens: int) -> float:
    async def collect(prompt: list[int]) -> str:
        return "".join([piece async for piece in queue.submit(prompt, max_new_tokens)])

    started = time.perf_counter()
    await asyncio.gather(*(collect(prompt) for prompt in prompts))
    return time.perf_counter() - started


def seconds(folder: Path, batch_size: int, requests: int, max_new_tokens: int, repeats: int) -> float:
    model, tokenizer = load_model(folder)
    template, generation = PromptTemplate.load(folder), load_generation(folder)
    serve = load_params(ROOT / "params.yaml").serve
    batching = serve.batching.model_copy(update={"batch_size": batch_size, "max_queue": requests, "retry_after_s": 1})
    queue = GenerationQueue(model, tokenizer, template, generation, batching)
    prompts = [
        encode_prompt(tokenizer, template, question, "", "en" if question.isascii() else "zh")
        for question in (QUESTIONS * requests)[:requests]
    ]
    timings = [asyncio.run(answer_all(queue, prompts, max_new_tokens)) for _ in range(repeats)]
    queue.close()
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a fine-tuned model folder")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    arguments = (options.requests, options.max_new_tokens, options.repeats)
    baseline = seconds(options.model, 1, *arguments)
    batched = seconds(options.model, options.batch_size, *arguments)
    result = {
        "model": str(options.model),
        "requests": options.requests,
        "max_new_tokens": options.max_new_tokens,
        "one_at_a_time_s": round(baseline, 3),
        f"batched_{options.batch_size}_s": round(batched, 3),
        "speedup": round(baseline / batched, 2),
        "answers_per_s": {
            "one_at_a_time": round(options.requests / baseline, 2),
            "batched": round(options.requests / batched, 2),
        },
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
    }
    out = ROOT / "bench/results/serving.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
