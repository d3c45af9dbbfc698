"""`psyllm evaluate`: several models, one protocol, side by side on the Q&A test split.

Variants: `base` (the untouched base model), `finetuned_base` (fine-tune only) and
`finetuned_pretrained` (domain pretraining, then fine-tuning); comparing the last two shows
what domain pretraining adds. Every variant is scored on the same questions with the same
prompts and decoding:
- perplexity (token-weighted, reference answer tokens given the prompt) and bits per
  character, which compares across tokenizers;
- ROUGE-L of the generated answer against the question's best-matching reference answer;
- Distinct-1/2 over all generated answers, and for the reference answers as a yardstick;
- mean generated answer length (words, or characters for CJK).
Per language and overall, into `metrics.json` (DVC metrics) and `report.md`.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from components.config import EvaluateConfig, FinetuneConfig, GenerationConfig, ModelConfig, Paths, Profile
from components.errors import PsyllmError
from components.jsonl import write_atomic, write_json
from components.metrics import NllTotals, distinct_n, rouge_l
from components.modelling.base_model import load_model, step_base, use_cpu_threads
from components.modelling.data import qa_example
from components.modelling.generate import Question, generate_answers
from components.modelling.loss import IGNORE_INDEX, CausalLMLoss
from components.modelling.prompt import TEMPLATE_FILE, PromptTemplate
from components.modelling.stored_generation import load_generation
from components.progress import Progress
from components.qa_data import QAPair, load_qa
from components.results import METRICS_FILE
from components.text import word_tokens

REPORT_FILE = "report.md"
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


def select_questions(pairs: list[QAPair], limit: int | None) -> dict[str, list[QAPair]]:
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


@torch.no_grad()
def answer_nll(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    pairs: list[QAPair],
    finetune: FinetuneConfig,
) -> dict[str, NllTotals]:
    """Reference-answer NLL per language, prompted exactly as in fine-tuning."""
    loss = CausalLMLoss(model, finetune.training.loss_chunk_size)
    totals: dict[str, NllTotals] = defaultdict(NllTotals)
    device = next(model.parameters()).device
    progress = Progress("scoring reference answers", len(pairs), unit="answer")
    for pair in pairs:
        prompt, answer = qa_example(pair, tokenizer, template, finetune.training.block_size)
        if not answer:
            continue
        ids = torch.tensor([prompt + answer], device=device)
        labels = torch.tensor([[IGNORE_INDEX] * len(prompt) + answer], device=device)
        nll, tokens = loss(ids, labels)
        scored_text = tokenizer.decode(answer, skip_special_tokens=True)
        totals[pair.language].add(float(nll), int(tokens), len(scored_text))
        progress.advance(tokens=len(prompt) + len(answer))
    return totals


def _scores(nll: NllTotals, generated: list[str], references: list[list[str]]) -> dict[str, float]:
    return {
        "perplexity": nll.perplexity,
        "bits_per_character": nll.bits_per_character,
        "rouge_l": sum(map(rouge_l, generated, references)) / len(generated),
        "distinct_1": distinct_n(generated, 1),
        "distinct_2": distinct_n(generated, 2),
        "mean_answer_length": sum(len(word_tokens(text)) for text in generated) / len(generated),
        "questions": len(generated),
        "answer_tokens_scored": nll.tokens,
    }


def score_variant(
    source: str,
    template: PromptTemplate,
    questions: dict[str, list[QAPair]],
    finetune: FinetuneConfig,
    generation: GenerationConfig,
    config: EvaluateConfig,
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """One model's metrics (per language and overall) and its generated answers, in question order."""
    model, tokenizer = load_model(source)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    pairs = [pair for answers in questions.values() for pair in answers]
    nll_by_language = answer_nll(model, tokenizer, template, pairs, finetune)
    asked = [
        Question(answers[0].question, answers[0].description, answers[0].language) for answers in questions.values()
    ]
    generated = generate_answers(model, tokenizer, template, asked, generation, config.batch_size)
    references = [[pair.answer for pair in answers] for answers in questions.values()]
    languages = [answers[0].language for answers in questions.values()]
    metrics: dict[str, dict[str, float]] = {}
    for language in sorted(set(languages)):
        keep = [index for index, lang in enumerate(languages) if lang == language]
        metrics[language] = _scores(
            nll_by_language[language], [generated[i] for i in keep], [references[i] for i in keep]
        )
    overall = NllTotals()
    for totals in nll_by_language.values():
        overall.add(totals.nll, totals.tokens, totals.characters)
    metrics["overall"] = _scores(overall, generated, references)
    return metrics, generated


def reference_metrics(questions: dict[str, list[QAPair]]) -> dict[str, dict[str, float]]:
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


def run(profile: Profile, paths: Paths) -> ModelEvaluation:
    """Score every variant of `evaluate.variants` on the test split; write metrics and report to paths.model_eval."""
    model_config, finetune, generation, config = profile.model, profile.finetune, profile.generation, profile.evaluate
    corpus, qa_dir, cache, finetuned, out = paths.corpus, paths.qa, paths.cache, paths.finetuned, paths.model_eval
    use_cpu_threads(model_config)
    questions = select_questions(load_qa(qa_dir / "test.jsonl"), config.max_questions)
    if not questions:
        raise PsyllmError(f"{qa_dir / 'test.jsonl'}: no test questions to evaluate")
    for variant in config.variants:  # before any scoring, so a stale model fails at once
        if variant != "base":
            _check_stored_generation(
                Path(variant_source(variant, model_config, cache, corpus, qa_dir, finetuned)), generation
            )
    variants: dict[str, Any] = {}
    answers: dict[str, list[str]] = {}
    for variant in config.variants:
        source = variant_source(variant, model_config, cache, corpus, qa_dir, finetuned)
        if (
            variant == "base"
        ):  # asked and decoded as the fine-tuned variants are: the variants differ only in their weights
            template = PromptTemplate(max_description_tokens=finetune.max_description_tokens)
        else:
            template = PromptTemplate.load(Path(source))
        variants[variant], answers[variant] = score_variant(source, template, questions, finetune, generation, config)
    metrics = {
        "variants": variants,
        "references": reference_metrics(questions),
        "generation": {**generation.model_dump(), "batch_size": config.batch_size},
        "questions": len(questions),
        "answers": sum(len(pairs) for pairs in questions.values()),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / METRICS_FILE, metrics)
    write_atomic(out / REPORT_FILE, render_report(metrics, questions, answers, config.samples_in_report))
    return ModelEvaluation(folder=out, metrics=metrics)


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_report(
    metrics: dict[str, Any], questions: dict[str, list[QAPair]], answers: dict[str, list[str]], samples: int
) -> str:
    lines = [
        "# Model evaluation on the Q&A test split",
        "",
        f"{metrics['questions']} questions ({metrics['answers']} reference answers). Perplexity is token-weighted "
        "over reference answer tokens given the prompt; bits per character compares across tokenizers. ROUGE-L takes "
        "the best reference per question; CJK text is scored by character.",
        "",
        f"Generation: {', '.join(f'{key}={value}' for key, value in metrics['generation'].items())}.",
        "",
    ]
    scopes = sorted(
        {scope for variant in metrics["variants"].values() for scope in variant}, key=lambda s: (s != "overall", s)
    )
    for scope in scopes:
        lines += [
            f"## {scope}",
            "",
            "| model | perplexity | bits/char | ROUGE-L | Distinct-1 | Distinct-2 | mean length |",
            "|---|---|---|---|---|---|---|",
        ]
        for variant, by_scope in metrics["variants"].items():
            if scope in by_scope:
                m = by_scope[scope]
                lines.append(
                    f"| {VARIANT_TITLES[variant]} | {m['perplexity']:.2f} | {m['bits_per_character']:.3f} | "
                    f"{m['rouge_l']:.4f} | {m['distinct_1']:.4f} | {m['distinct_2']:.4f} | "
                    f"{m['mean_answer_length']:.1f} |"
                )
        reference = metrics["references"].get(scope)
        if reference:
            lines.append(
                f"| reference answers | – | – | – | {reference['distinct_1']:.4f} | {reference['distinct_2']:.4f} | "
                f"{reference['mean_answer_length']:.1f} |"
            )
        lines.append("")
    if samples:
        lines += [
            "## Samples",
            "",
            "| question | reference | " + " | ".join(VARIANT_TITLES[r] for r in answers) + " |",
            "|---|---|" + "---|" * len(answers),
        ]
        for index, pairs in enumerate(list(questions.values())[:samples]):
            cells = [_short(pairs[0].question, 80), _short(pairs[0].answer, 120)]
            cells += [_short(answers[variant][index], 160) or "(empty)" for variant in answers]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if not math.isfinite(sum(r["overall"]["perplexity"] for r in metrics["variants"].values())):
        lines.append("Note: a non-finite perplexity means the model put zero probability on a reference token.")
    return "\n".join(lines)
