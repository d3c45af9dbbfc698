"""`psyllm evaluate`: several models, one protocol, side by side on the Q&A test split and the real benchmark.

Variants: `base` (the untouched base model), `finetuned_base` (fine-tune only) and
`finetuned_pretrained` (domain pretraining, then fine-tuning); comparing the last two shows
what domain pretraining adds. Every variant answers the same questions with the same prompts and
decoding, scored as `scoring` says, on two sets:
- the Q&A test split from `prepare` (`variants` in metrics.json): our own written questions in the
  default profiles, good for smoke runs, never evidence of quality;
- the real benchmark (`benchmark`): `evaluate.benchmark_questions` questions per source of the frozen
  real benchmark, with each fine-tuned variant's change against the base model and its paired
  bootstrap interval.
Per-question records (`questions.jsonl`: ids, scores and generated answers, which can repeat a phrase
of a real question, so DVC caches the file instead of git) let every number be recomputed; `report.md`
is for people.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from components.benchmark import Benchmark, load_benchmark
from components.config import EvaluateConfig, FinetuneConfig, GenerationConfig, ModelConfig, Paths, Profile
from components.errors import PsyllmError
from components.hardware import inference_dtype
from components.jsonl import read_jsonl, write_atomic, write_json, write_jsonl
from components.metrics import distinct_n
from components.modelling.base_model import load_model, step_base, use_cpu_threads
from components.modelling.finetune import prompt_template
from components.modelling.prompt import TEMPLATE_FILE, PromptTemplate
from components.modelling.scoring import Questions, QuestionScore, compare, score_questions, summarize
from components.modelling.stored_generation import load_generation
from components.qa_data import QAPair, load_qa
from components.results import METRICS_FILE
from components.text import word_tokens

REPORT_FILE = "report.md"
RECORDS_FILE = "questions.jsonl"
VARIANT_TITLES = {
    "base": "base model",
    "finetuned_base": "fine-tune only",
    "finetuned_pretrained": "domain pretrain + fine-tune",
}


@dataclass(frozen=True)
class ModelEvaluation:
    """Where the evaluation was written, and the metrics in its metrics.json."""

    folder: Path
    metrics: dict[str, Any]


def select_questions(pairs: list[QAPair], limit: int | None) -> Questions:
    """Answers grouped by question, at most `limit` questions, shared out evenly across languages."""
    by_question: dict[str, list[QAPair]] = defaultdict(list)
    for pair in pairs:
        by_question[pair.question_id].append(pair)
    by_language: dict[str, list[str]] = defaultdict(list)
    for question_id in sorted(by_question):
        by_language[by_question[question_id][0].language].append(question_id)
    chosen: list[str] = []
    queues = [list(ids) for _, ids in sorted(by_language.items())]
    while queues and (limit is None or len(chosen) < limit):
        for queue in queues:
            if queue and (limit is None or len(chosen) < limit):
                chosen.append(queue.pop(0))
        queues = [queue for queue in queues if queue]
    return {question_id: by_question[question_id] for question_id in chosen}


def reference_metrics(questions: Questions) -> dict[str, dict[str, float]]:
    """Distinct-n and length of the human answers, the yardstick for the generated ones."""
    metrics = {}
    groups: dict[str, list[str]] = defaultdict(list)
    for answers in questions.values():
        for pair in answers:
            groups[pair.language].append(pair.answer)
            groups["overall"].append(pair.answer)
    for name, texts in sorted(groups.items()):
        metrics[name] = {
            "distinct_1": distinct_n(texts, 1),
            "distinct_2": distinct_n(texts, 2),
            "mean_answer_length": sum(len(word_tokens(text)) for text in texts) / len(texts),
        }
    return metrics


def variant_source(
    variant: str, model_config: ModelConfig, cache: Path, corpus: Path, qa_dir: Path, finetuned: Path
) -> str:
    if variant == "base":
        return step_base(model_config, cache, corpus, qa_dir)
    folder = finetuned / variant.removeprefix("finetuned_")
    if not (folder / TEMPLATE_FILE).is_file():
        raise PsyllmError(
            f"{folder}: no fine-tuned model for evaluate variant {variant!r}; run `psyllm finetune` first"
        )
    return str(folder)


def _check_stored_generation(folder: Path, generation: GenerationConfig) -> None:
    """A fine-tuned model serves with the settings stored in it: they must be the ones evaluated."""
    stored = load_generation(folder)
    if stored != generation:
        differ = sorted(key for key, value in generation.model_dump().items() if getattr(stored, key) != value)
        raise PsyllmError(
            f"{folder}: stores generation settings other than the profile's ({', '.join(differ)}); "
            "rerun `psyllm finetune` (or `dvc repro`) so the model carries the settings it is evaluated with"
        )


def _template(variant: str, source: str, finetune: FinetuneConfig) -> PromptTemplate:
    """The base model is asked as the fine-tuned ones are: the variants differ only in their weights."""
    if variant == "base":
        return prompt_template(finetune)
    return PromptTemplate.load(Path(source))


def _benchmark_questions(benchmark: Benchmark, config: EvaluateConfig) -> Questions:
    return {question.id: question.pairs() for question in benchmark.sample(config.benchmark_questions)}


def _benchmark_metrics(
    benchmark: Benchmark, config: EvaluateConfig, scores: dict[str, list[QuestionScore]]
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "version": benchmark.version,
        "questions_per_source": config.benchmark_questions,
        "missing_sources": benchmark.missing_sources,
    }
    if not scores:
        return {**metrics, "skipped": "no benchmark source is present"}
    metrics["variants"] = {variant: summarize(records) for variant, records in scores.items()}
    if "base" in scores:
        metrics["changes_from_base"] = {
            variant: compare(records, scores["base"]) for variant, records in scores.items() if variant != "base"
        }
    return metrics


def evaluation_sets(profile: Profile, paths: Paths, benchmark: Benchmark) -> dict[str, Questions]:
    """The questions every model is scored on: `test_split`, and `benchmark` where a source is present."""
    config = profile.evaluate
    sets = {"test_split": select_questions(load_qa(paths.qa / "test.jsonl"), config.max_questions)}
    if not sets["test_split"]:
        raise PsyllmError(f"{paths.qa / 'test.jsonl'}: no test questions to evaluate")
    if benchmark_questions := _benchmark_questions(benchmark, config):
        sets["benchmark"] = benchmark_questions
    return sets


def scoring_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def scoring_precision() -> str:
    """The precision `score_model` loads models in here ('bfloat16' or 'float32'), recorded with its scores."""
    return str(inference_dtype(scoring_device())).removeprefix("torch.")


def score_model(
    source: str, template: PromptTemplate, sets: dict[str, Questions], profile: Profile
) -> dict[str, list[QuestionScore]]:
    """One model's records on each set, asked with `template` and decoded with the profile's settings."""
    use_cpu_threads(profile.model)
    device = scoring_device()
    model, tokenizer = load_model(source, inference_dtype(device))
    model.to(device).eval()
    return {
        name: score_questions(
            model, tokenizer, template, questions, profile.finetune, profile.generation, profile.evaluate.batch_size
        )
        for name, questions in sets.items()
    }


def read_records(folder: Path) -> dict[str, dict[str, list[QuestionScore]]]:
    """The per-question records `run` wrote, by set and variant."""
    if not (folder / RECORDS_FILE).is_file():
        raise PsyllmError(f"{folder / RECORDS_FILE}: missing; run `psyllm evaluate` (or `psyllm run`) first")
    records: dict[str, dict[str, list[QuestionScore]]] = defaultdict(lambda: defaultdict(list))
    for _, record in read_jsonl(folder / RECORDS_FILE):
        name, variant = record.pop("set"), record.pop("variant")
        records[name][variant].append(QuestionScore(**record))
    return records


def run(profile: Profile, paths: Paths) -> ModelEvaluation:
    """Score every variant of `evaluate.variants` on both sets; write metrics, records and report."""
    model_config, finetune, generation, config = profile.model, profile.finetune, profile.generation, profile.evaluate
    sources = {
        variant: variant_source(variant, model_config, paths.cache, paths.corpus, paths.qa, paths.finetuned)
        for variant in config.variants
    }
    for variant, source in sources.items():  # before any scoring, so a stale model fails at once
        if variant != "base":
            _check_stored_generation(Path(source), generation)
    benchmark = load_benchmark(paths.benchmark)
    sets = evaluation_sets(profile, paths, benchmark)
    scores: dict[str, dict[str, list[QuestionScore]]] = defaultdict(dict)
    for variant, source in sources.items():
        for name, records in score_model(source, _template(variant, source, finetune), sets, profile).items():
            scores[name][variant] = records
    test_split = sets["test_split"]
    metrics = {
        "variants": {variant: summarize(records) for variant, records in scores["test_split"].items()},
        "references": reference_metrics(test_split),
        "generation": {
            **generation.model_dump(),
            "batch_size": config.batch_size,
            "dtype": scoring_precision(),
        },
        "questions": len(test_split),
        "answers": sum(len(pairs) for pairs in test_split.values()),
        "benchmark": _benchmark_metrics(benchmark, config, scores.get("benchmark", {})),
    }
    paths.model_eval.mkdir(parents=True, exist_ok=True)
    write_json(paths.model_eval / METRICS_FILE, metrics)
    write_jsonl(
        paths.model_eval / RECORDS_FILE,
        (
            {"set": name, "variant": variant, **record.as_record()}
            for name, by_variant in scores.items()
            for variant, records in by_variant.items()
            for record in records
        ),
    )
    answers = {variant: [record.answer for record in records] for variant, records in scores["test_split"].items()}
    write_atomic(paths.model_eval / REPORT_FILE, render_report(metrics, test_split, answers, config.samples_in_report))
    return ModelEvaluation(folder=paths.model_eval, metrics=metrics)


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _scope_tables(variants: dict[str, dict[str, Any]], references: dict[str, Any], level: str) -> list[str]:
    lines = []
    scopes = sorted({scope for by_scope in variants.values() for scope in by_scope}, key=lambda s: (s != "overall", s))
    for scope in scopes:
        lines += [
            f"{level} {scope}",
            "",
            "| model | perplexity | bits/char | ROUGE-L | Distinct-1 | Distinct-2 | mean length |",
            "|---|---|---|---|---|---|---|",
        ]
        for variant, by_scope in variants.items():
            if scope in by_scope:
                m = by_scope[scope]
                lines.append(
                    f"| {VARIANT_TITLES[variant]} | {m['perplexity']:.2f} | {m['bits_per_character']:.3f} | "
                    f"{m['rouge_l']:.4f} | {m['distinct_1']:.4f} | {m['distinct_2']:.4f} | "
                    f"{m['mean_answer_length']:.1f} |"
                )
        if reference := references.get(scope):
            lines.append(
                f"| reference answers | – | – | – | {reference['distinct_1']:.4f} | {reference['distinct_2']:.4f} | "
                f"{reference['mean_answer_length']:.1f} |"
            )
        lines.append("")
    return lines


def _interval(change: dict[str, float], percent: bool) -> str:
    scale, unit = (100, " %") if percent else (1, "")
    return f"{change['value'] * scale:+.2f}{unit} [{change['low'] * scale:+.2f}, {change['high'] * scale:+.2f}]"


def _benchmark_section(benchmark: dict[str, Any]) -> list[str]:
    per_source = benchmark["questions_per_source"]
    lines = [
        f"## Real benchmark {benchmark['version']}",
        "",
        f"{'Every question' if per_source is None else f'{per_source} questions'} of each present source "
        "(sampled in a fixed hashed order), with every reference answer; texts stay in the shared data.",
        "",
    ]
    if benchmark["missing_sources"]:
        lines += [f"Missing sources, not scored: {', '.join(benchmark['missing_sources'])}.", ""]
    if "skipped" in benchmark:
        return [*lines, f"Not scored: {benchmark['skipped']}.", ""]
    lines += _scope_tables(benchmark["variants"], {}, "###")
    if changes := benchmark.get("changes_from_base"):
        lines += [
            "### Change from the base model (paired bootstrap over questions, 95 % interval)",
            "",
            "| model | scope | perplexity change | ROUGE-L change |",
            "|---|---|---|---|",
        ]
        for variant, by_scope in changes.items():
            for scope, change in by_scope.items():
                if "skipped" in change:
                    lines.append(f"| {VARIANT_TITLES[variant]} | {scope} | {change['skipped']} | |")
                else:
                    lines.append(
                        f"| {VARIANT_TITLES[variant]} | {scope} | {_interval(change['perplexity'], True)} | "
                        f"{_interval(change['rouge_l'], False)} |"
                    )
        lines.append("")
    return lines


def render_report(metrics: dict[str, Any], questions: Questions, answers: dict[str, list[str]], samples: int) -> str:
    lines = [
        "# Model evaluation",
        "",
        "## Q&A test split",
        "",
        f"{metrics['questions']} questions ({metrics['answers']} reference answers). Perplexity is token-weighted "
        "over reference answer tokens given the prompt; bits per character compares across tokenizers. ROUGE-L takes "
        "the best reference per question; CJK text is scored by character.",
        "",
        f"Generation: {', '.join(f'{key}={value}' for key, value in metrics['generation'].items())}.",
        "",
        *_scope_tables(metrics["variants"], metrics["references"], "###"),
    ]
    if samples:
        lines += [
            "### Samples",
            "",
            "| question | reference | " + " | ".join(VARIANT_TITLES[r] for r in answers) + " |",
            "|---|---|" + "---|" * len(answers),
        ]
        for index, pairs in enumerate(list(questions.values())[:samples]):
            cells = [_short(pairs[0].question, 80), _short(pairs[0].answer, 120)]
            cells += [_short(answers[variant][index], 160) or "(empty)" for variant in answers]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += _benchmark_section(metrics["benchmark"])
    if not math.isfinite(sum(r["overall"]["perplexity"] for r in metrics["variants"].values())):
        lines.append("Note: a non-finite perplexity means the model put zero probability on a reference token.")
    return "\n".join(lines)
