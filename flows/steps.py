"""The pipeline's steps as a table: what each one runs, what it records in MLflow, what it prints.

Each DVC stage runs `psyllm <step>`, and each of these verbs runs one entry through `run_step`:
open the step's MLflow run with the settings it reads, run its component on the active profile,
log what it produced, and return one summary line per result. Adding a step is one entry here
and one stage in dvc.yaml. Each entry imports its component when it runs, so a stage pays only
for the libraries it uses (importing every step up front costs over ten seconds per stage).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.config import Params

if TYPE_CHECKING:
    from components.tracking import StepRun


@dataclass(frozen=True)
class Step:
    """One pipeline step: its verb, what it logs as MLflow params, and the work with its summary."""

    name: str  # the CLI verb and the MLflow run's `psyllm.step` tag
    help: str
    settings: Callable[[Params], dict[str, Any]] | None  # None: the step records no MLflow run
    work: Callable[[Params, "StepRun | None"], list[str]]  # runs the component, logs, returns summary lines


def step_named(name: str) -> Step:
    return next(step for step in STEPS if step.name == name)


def run_step(step: Step, params: Params) -> list[str]:
    """Run one step on the active profile, inside its MLflow run when it records one."""
    if step.settings is None:
        return step.work(params, None)
    from components import tracking

    with tracking.step_run(step.name, step.settings(params)) as run:
        return step.work(params, run)


def _sections(*names: str) -> Callable[[Params], dict[str, Any]]:
    """The active profile's sections a step reads, as its MLflow params."""
    return lambda params: {name: getattr(params.active(), name).model_dump(mode="json") for name in names}


def _screening(params: Params) -> dict[str, Any]:
    return {"screening": params.screening.model_dump(mode="json")}


def _crawl(params: Params, run: "StepRun | None") -> list[str]:
    from components import crawl

    result = crawl.run(params.active().crawl, params.paths.crawl)
    report = result.report
    lines = [
        f"crawl: {report['pages_stored']} pages in {result.pages_file} "
        f"(robots skips {report['robots_skips']}, duplicates {report['duplicates']}, "
        f"off-domain links {report['off_domain_links']}, errors {sum(report['errors'].values())})"
    ]
    if report["unreachable"]:
        lines.append(
            f"crawl: {report['unreachable']} URLs not fetched: their site's robots.txt was out of reach "
            "(no network, or the site failing); the corpus is the pages above plus prepare.corpus_files"
        )
    return lines


def _benchmark(params: Params, run: "StepRun | None") -> list[str]:
    from components import benchmark

    built = benchmark.build(params.paths.shared_data, params.paths.benchmark)
    lines = []
    for source, entry in built.manifest["sources"].items():
        if entry["status"] == "missing":
            lines.append(
                f"benchmark: {source} is missing ({entry['file']} not found): "
                f"its {entry['questions']} questions are not scored"
            )
        else:
            lines.append(
                f"benchmark {built.version}: {source} {entry['questions']} questions, {entry['answers']} answers"
            )
    return lines


def _prepare(params: Params, run: "StepRun | None") -> list[str]:
    from components import crawl, prepare
    from components.benchmark import load_benchmark

    result = prepare.run(
        params.active().prepare,
        params.paths.crawl / crawl.PAGES_FILE,
        load_benchmark(params.paths.benchmark),
        params.paths.prepared,
    )
    corpus, qa = result.stats["corpus"], result.stats["qa"]
    sizes = ", ".join(f"{name} {split['pairs']}" for name, split in qa["splits"].items())
    return [
        f"prepare: {corpus['documents_out']} corpus documents; Q&A pairs {sizes}; "
        f"{qa['held_out_for_benchmark']} held out for the benchmark"
    ]


def _resumed(resumed_from: int) -> str:
    return f", resumed from step {resumed_from}" if resumed_from else ""


def _pretrain(params: Params, run: "StepRun | None") -> list[str]:
    from components.modelling import pretrain
    from components.modelling.trained import TRAINING_FILE

    assert run is not None
    result = pretrain.run(params.active(), params.paths)
    if result is None:
        return [f"pretrain: skipped, as no fine-tune start reads a pretrained model ({params.paths.pretrained}/)"]
    run.log_history(result.training.history)
    run.log_metrics({"blocks": result.examples, "steps": result.training.steps})
    run.log_artifacts(result.folder / TRAINING_FILE, "pretrained")
    final_loss = result.training.history[-1]["loss"] if result.training.history else float("nan")
    return [
        f"pretrain: {result.training.steps} steps on {result.examples} blocks{_resumed(result.training.resumed_from)}; "
        f"final loss {final_loss:.3f}; model in {result.folder}/"
    ]


def _finetune(params: Params, run: "StepRun | None") -> list[str]:
    from components.modelling import finetune
    from components.modelling.trained import TRAINING_FILE

    assert run is not None
    results = finetune.run(params.active(), params.paths)
    lines = []
    for start, result in results.items():
        training = result.training
        run.log_metrics(
            {
                start: {
                    "steps": training.steps,
                    "examples": result.examples,
                    "best_validation_loss": training.best_validation_loss,
                }
            }
        )
        run.log_language_model(result.folder, f"finetuned_{start}")
        run.log_artifacts(result.folder / TRAINING_FILE, f"finetuned_{start}")
        early = ", stopped early" if training.stopped_early else ""
        lines.append(
            f"finetune ({start}): {training.steps} steps on {result.examples} pairs{early}"
            f"{_resumed(training.resumed_from)}; best validation loss {training.best_validation_loss:.3f}; "
            f"model in {result.folder}/"
        )
    return lines


def _evaluate(params: Params, run: "StepRun | None") -> list[str]:
    from components.modelling import evaluate
    from components.results import ModelEvaluationResults

    assert run is not None
    result = evaluate.run(params.active(), params.paths)
    run.log_metrics(result.metrics["variants"])
    run.log_artifacts(result.folder, "model_eval")
    lines = []
    for variant, scores in ModelEvaluationResults.model_validate(result.metrics).variants.items():
        overall = scores["overall"]
        lines.append(
            f"evaluate: {evaluate.VARIANT_TITLES[variant]}: perplexity {overall.perplexity:.2f}, "
            f"ROUGE-L {overall.rouge_l:.4f}, Distinct-1/2 {overall.distinct_1:.3f}/{overall.distinct_2:.3f}"
        )
    return [
        *lines,
        *_benchmark_lines(result.metrics["benchmark"]),
        f"evaluate: report in {result.folder / evaluate.REPORT_FILE}",
    ]


def _benchmark_lines(benchmark: dict[str, Any]) -> list[str]:
    name = f"evaluate: real benchmark {benchmark['version']}"
    if "skipped" in benchmark:
        return [f"{name}: not scored ({benchmark['skipped']})"]
    lines = []
    for variant, by_scope in benchmark.get("changes_from_base", {}).items():
        for scope, change in by_scope.items():
            if "perplexity" in change:
                ppl, rouge = change["perplexity"], change["rouge_l"]
                lines.append(
                    f"{name}, {variant} vs base, {scope}: perplexity {ppl['value']:+.1%} "
                    f"[{ppl['low']:+.1%}, {ppl['high']:+.1%}], ROUGE-L {rouge['value']:+.4f} "
                    f"[{rouge['low']:+.4f}, {rouge['high']:+.4f}]"
                )
    return lines


def _train_screener(params: Params, run: "StepRun | None") -> list[str]:
    from components.screening import train

    assert run is not None
    result = train.run(params.screening, params.paths.shared_data, params.paths.screener)
    run.log_metrics(result.manifest["languages"])
    run.log_screener(result.folder)
    lines = [
        f"train-screener: {language} {stats['train_messages']} written + {stats['real_train_messages']} real "
        f"messages; out-of-fold urgent recall/precision written {stats['oof_written_urgent_recall']:.2f}"
        f"/{stats['oof_written_urgent_precision']:.2f}, real {stats['oof_real_urgent_recall']:.2f}"
        f"/{stats['oof_real_urgent_precision']:.2f}"
        for language, stats in result.manifest["languages"].items()
    ]
    if result.manifest["real_messages"] != "trained on the real train split":
        lines.append(f"train-screener: trained on written messages only: {result.manifest['real_messages']}")
    return [*lines, f"train-screener: {result.folder}/"]


def _value(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _evaluate_screener(params: Params, run: "StepRun | None") -> list[str]:
    from components.results import ScreenerEvaluationResults
    from components.screening import Screener, evaluate

    assert run is not None
    result = evaluate.run(
        params.screening, params.paths.shared_data, Screener.load(params.paths.screener), params.paths.screener_eval
    )
    run.log_metrics(result.metrics)
    run.log_artifacts(result.folder, "screener_eval")
    measured = ScreenerEvaluationResults.model_validate(result.metrics)
    lines = []
    for split in ("written", "real"):
        if (reason := measured.skipped(split)) is not None:
            lines.append(f"evaluate-screener: {split} test split skipped: {reason}")
        for language, scores in measured.split(split).items():
            recall, precision = scores.urgent_recall, scores.urgent_precision
            lines.append(
                f"evaluate-screener: {split} {language} urgent recall {_value(recall.value)} {list(recall.ci95)}, "
                f"precision {_value(precision.value)} {list(precision.ci95)}"
            )
    for source, rate in measured.source_rates().items():
        lines.append(
            f"evaluate-screener: {source} flags {_value(rate.flagged_urgent.value, '.1%')} of the {rate.messages} "
            f"messages it was not trained on urgent (labelled {_value(rate.labelled_urgent.value, '.1%')})"
        )
    return [*lines, f"evaluate-screener: report in {result.folder / evaluate.REPORT_FILE}"]


STEPS = (
    Step(
        "crawl",
        "Fetch psychology articles politely (robots.txt, rate limits) and store their main text; resumes if killed.",
        None,
        _crawl,
    ),
    Step(
        "benchmark",
        "Read the real benchmark from the shared public data and check it against its frozen version.",
        None,
        _benchmark,
    ),
    Step(
        "prepare",
        "Clean, language-tag, deduplicate and PII-scrub the corpus; split the Q&A without leaks.",
        None,
        _prepare,
    ),
    Step(
        "pretrain",
        "Continue the base model's causal-LM pretraining on the prepared corpus (resumes if killed).",
        _sections("model", "pretrain"),
        _pretrain,
    ),
    Step(
        "finetune",
        "Fine-tune on the Q&A train split (answer tokens only), from each start in finetune.starts.",
        _sections("model", "finetune", "generation"),
        _finetune,
    ),
    Step(
        "evaluate",
        "Score base and fine-tuned models side by side: perplexity, bits/char, ROUGE-L, Distinct-1/2.",
        _sections("evaluate", "generation"),
        _evaluate,
    ),
    Step(
        "train-screener",
        "Train the urgent-case screener's per-language heads on the frozen train split.",
        _screening,
        _train_screener,
    ),
    Step(
        "evaluate-screener",
        "Measure the screener on the frozen written and real test splits, and each real source's flag rate.",
        _screening,
        _evaluate_screener,
    ),
)
