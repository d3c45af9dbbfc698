"""How fast `psyllm evaluate` scores one model on the real benchmark, against a plain loop, and what bf16 costs.

The candidate is the evaluation step's own scoring (`score_questions`: reference answers scored in
right-padded batches sorted by length, answers generated in batches, both in the precision
`hardware.inference_dtype` picks: bf16 on a CPU with bf16 units). The baseline is a plain loop on
the same questions: the model in fp32, as `from_pretrained` loads it, each reference answer
scored alone with Hugging Face's own loss, and each answer generated alone with `generate`.
Both read the default profile's prompt, block size and decoding settings. `speedup` is the
baseline's seconds over the candidate's on the same questions, and the perplexity change says
what the precision costs (evaluation keeps bf16 only while it moves perplexity by under 1 %).
A second, larger run times the candidate alone on `--questions` per source (the target: one
model on 100 questions per language in under 5 minutes on 2 cores). Results go to
bench/results/evaluate.json.

    .venv/bin/python bench/evaluate.py --model data/models/finetuned/pretrained --benchmark data/benchmark
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch

from components.benchmark import load_benchmark
from components.config import load_params
from components.hardware import inference_dtype, machine
from components.metrics import NllTotals
from components.modelling.base_model import load_model
from components.modelling.data import qa_example
from components.modelling.loss import IGNORE_INDEX
from components.modelling.prompt import PromptTemplate, encode_prompt
from components.modelling.scoring import Questions, QuestionScore, score_questions
from components.modelling.stored_generation import load_generation

ROOT = Path(__file__).resolve().parents[1]


def perplexities(nll_by_question: dict[str, NllTotals], languages: dict[str, str]) -> dict[str, float]:
    """Token-weighted perplexity per language."""
    by_language: dict[str, NllTotals] = {}
    for question_id, totals in nll_by_question.items():
        by_language.setdefault(languages[question_id], NllTotals()).add(totals.nll, totals.tokens, totals.characters)
    return {language: round(totals.perplexity, 4) for language, totals in sorted(by_language.items())}


def candidate(folder: Path, questions: Questions) -> tuple[float, list[QuestionScore]]:
    profile = load_params(ROOT / "params.yaml").active()
    model, tokenizer = load_model(folder, inference_dtype(torch.device("cpu")))
    started = time.perf_counter()
    records = score_questions(
        model, tokenizer, PromptTemplate.load(folder), questions, profile.finetune, load_generation(folder),
        profile.evaluate.batch_size,
    )  # fmt: skip
    return time.perf_counter() - started, records


@torch.no_grad()
def baseline(folder: Path, questions: Questions) -> tuple[float, dict[str, NllTotals]]:
    """The plain loop's seconds and its reference NLL per question (its answers are only timed)."""
    profile = load_params(ROOT / "params.yaml").active()
    model, tokenizer = load_model(folder)
    template, generation = PromptTemplate.load(folder), load_generation(folder)
    totals: dict[str, NllTotals] = {}
    started = time.perf_counter()
    for question_id, pairs in questions.items():
        totals[question_id] = NllTotals()
        for pair in pairs:
            prompt, answer = qa_example(pair, tokenizer, template, profile.finetune.training.block_size)
            labels = torch.tensor([[IGNORE_INDEX] * len(prompt) + answer])
            mean_nll = model(input_ids=torch.tensor([prompt + answer]), labels=labels).loss
            totals[question_id].add(float(mean_nll) * len(answer), len(answer), 0)
        asked = pairs[0]
        prompt = encode_prompt(tokenizer, template, asked.question, asked.description, asked.language)
        prompt_ids = torch.tensor([prompt])
        model.generate(
            prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=generation.max_new_tokens,
            do_sample=False, repetition_penalty=generation.repetition_penalty, pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
    return time.perf_counter() - started, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a fine-tuned model folder")
    parser.add_argument("--benchmark", type=Path, required=True, help="a built benchmark folder (data/benchmark)")
    parser.add_argument("--compare-questions", type=int, default=10, help="per source, scored by both")
    parser.add_argument("--questions", type=int, default=100, help="per source, scored by the candidate alone")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/evaluate.json")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    benchmark = load_benchmark(args.benchmark)

    def sample(per_source: int) -> Questions:
        return {question.id: question.pairs() for question in benchmark.sample(per_source)}

    compared = sample(args.compare_questions)
    languages = {question_id: pairs[0].language for question_id, pairs in compared.items()}
    baseline_s, baseline_nll = baseline(args.model, compared)
    candidate_s, records = candidate(args.model, compared)
    candidate_nll = {r.question_id: NllTotals(r.nll, r.tokens, r.characters) for r in records}
    plain, ours = perplexities(baseline_nll, languages), perplexities(candidate_nll, languages)
    full = sample(args.questions)
    full_s, _ = candidate(args.model, full)
    dtype = str(inference_dtype(torch.device("cpu"))).removeprefix("torch.")
    result = {
        "machine": machine(),
        "model": str(args.model),
        "benchmark": benchmark.version,
        "candidate_dtype": dtype,
        "compared": {
            "questions": len(compared),
            "answers": sum(map(len, compared.values())),
            "baseline_seconds": round(baseline_s, 3),
            "candidate_seconds": round(candidate_s, 3),
            "speedup": round(baseline_s / candidate_s, 2),
            "perplexity_fp32_plain": plain,
            f"perplexity_{dtype}_candidate": ours,
            "perplexity_change_percent": {
                language: round(100 * (ours[language] / plain[language] - 1), 3) for language in plain
            },
        },
        "full": {
            "questions_per_source": args.questions,
            "questions": len(full),
            "answers": sum(map(len, full.values())),
            "candidate_seconds": round(full_s, 3),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"candidate {result['compared']['speedup']}x the plain loop; {len(full)} questions in {full_s / 60:.1f} min")


if __name__ == "__main__":
    main()
