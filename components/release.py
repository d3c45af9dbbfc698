"""The release steps after the step graph: register the fine-tuned model, then gate its promotion.

`register` turns the evaluated fine-tuned model and the trained screener into one registry version
(the answer model, components/serving/pyfunc.py) with the alias `challenger`: its metrics, the base
model's, lineage tags and a model card. A model and screener already registered together (same
content digests) are not registered again, so rerunning an unchanged
pipeline adds no version. `gate` gathers the evidence (the challenger and the champion on the same
questions, components/gate_evidence.py), applies the promotion policy (components/promotion.py) and
moves `champion` only when every check passes; the verdict is recorded either way.
"""

from dataclasses import dataclass
from pathlib import Path

from components import registry, tracking
from components.config import Params
from components.errors import PsyllmError
from components.lineage import data_hashes, folder_digest, git_commit, read_lock
from components.locations import DVC_LOCK_FILE, MODEL_CARD_FILE, PARAMS_FILE
from components.promotion import Decision, judge_challenger
from components.results import METRICS_FILE, SCORES, read_model_evaluation, read_screener_evaluation
from components.screening.screener import MANIFEST_FILE

CHALLENGER_VARIANTS = ("finetuned_pretrained", "finetuned_base")  # the paper's pipeline first
GATE_ACTOR = "psyllm promotion gate"
REGISTER_ACTOR = "psyllm register"
DATA_TAG = "psyllm.data."
FLOW_RUN_TAG = "psyllm.prefect_flow_run"
PARENT_RUN_TAG = "psyllm.mlflow_parent_run"
RUN_TAGS = (FLOW_RUN_TAG, PARENT_RUN_TAG)


@dataclass(frozen=True)
class Registration:
    version: registry.Version
    created: bool  # False when this model folder was registered before


@dataclass(frozen=True)
class GateOutcome:
    challenger: registry.Version
    champion: registry.Version | None  # the champion the challenger was compared with
    decision: Decision


def challenger_variant(variants: list[str]) -> str:
    """The evaluation variant whose model is released: pretrain + fine-tune when it was trained."""
    for variant in CHALLENGER_VARIANTS:
        if variant in variants:
            return variant
    raise PsyllmError(
        f"evaluate.variants has no fine-tuned variant to register (needs one of {', '.join(CHALLENGER_VARIANTS)})"
    )


def _check_evaluated(params: Params) -> None:
    """Refuse to register a model whose evaluation is of another model (per dvc.lock)."""
    stages = read_lock()
    finetuned = str(params.paths.finetuned)
    produced = next((o.get("md5") for o in stages.get("finetune", {}).get("outs", []) if o["path"] == finetuned), None)
    evaluated = next((d.get("md5") for d in stages.get("evaluate", {}).get("deps", []) if d["path"] == finetuned), None)
    if produced is None or produced != evaluated:
        raise PsyllmError(
            f"{DVC_LOCK_FILE}: the recorded evaluation is not of the current fine-tuned model (or nothing is "
            "recorded yet); run `psyllm run` (or `dvc repro evaluate`) before registering"
        )


def register(params: Params, lineage: dict[str, str]) -> Registration:
    """Register the evaluated fine-tuned model as the challenger (reusing an identical version)."""
    profile, paths = params.active(), params.paths
    variant = challenger_variant(profile.evaluate.variants)
    folder = paths.finetuned / variant.removeprefix("finetuned_")
    evaluation = read_model_evaluation(paths.model_eval)
    _check_evaluated(params)
    if not (paths.screener / MANIFEST_FILE).is_file():
        raise PsyllmError(
            f"no trained screener in {paths.screener}/ to register with the model; run `psyllm run` "
            "(or `dvc repro train_screener`) first"
        )
    digest, screener_digest = folder_digest(folder), folder_digest(paths.screener)
    existing = registry.find_by_digest(digest, screener_digest)
    if existing is not None:
        reason = "registered again: unchanged model and screener"
        registry.move_alias(registry.CHALLENGER, existing.number, reason, REGISTER_ACTOR)
        return Registration(existing, created=False)
    metrics = evaluation.overall(variant).kept()
    base = evaluation.overall("base").kept() if "base" in evaluation.variants else {}
    champion = registry.by_alias(registry.CHAMPION)
    tags = {
        "psyllm.git_commit": git_commit(Path.cwd()),
        "psyllm.profile": params.profile,
        "psyllm.base_model": profile.model.base,
        "psyllm.evaluation_variant": variant,
        **evaluation.benchmark.tags(),
        **{f"{DATA_TAG}{path}": value for path, value in data_hashes().items()},
        **lineage,
    }
    card = model_card(params, variant, metrics, base, champion, tags)
    run_params = {"variant": variant, "digest": digest, "screener_digest": screener_digest}
    with tracking.step_run("register", run_params) as run:
        model_uri = run.log_answer_model(folder, paths.screener, params.serve)
        MODEL_CARD_FILE.parent.mkdir(exist_ok=True)
        MODEL_CARD_FILE.write_text(card, encoding="utf-8")
        run.log_artifacts(MODEL_CARD_FILE, "model_card")
        for lineage_file in (PARAMS_FILE, DVC_LOCK_FILE):
            run.log_artifacts(lineage_file, "lineage")
        version = registry.create_version(
            model_uri, digest, screener_digest, metrics, base, {**tags, registry.REGISTER_RUN_TAG: run.run_id}, card
        )
    registry.move_alias(registry.CHALLENGER, version.number, "newly registered", REGISTER_ACTOR)
    return Registration(version, created=True)


def screening_results(params: Params) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per frozen test split (written, real) and language, urgent recall and precision (empty when not evaluated)."""
    if not (params.paths.screener_eval / METRICS_FILE).is_file():
        return {}
    evaluation = read_screener_evaluation(params.paths.screener_eval)
    return {
        split: {
            language: {"urgent_recall": scores.urgent_recall.value, "urgent_precision": scores.urgent_precision.value}
            for language, scores in evaluation.split(split).items()
        }
        for split in ("written", "real")
    }


def gate(params: Params) -> GateOutcome:
    """Decide on the challenger under the policy in params; promote it if every check passes."""
    challenger = registry.by_alias(registry.CHALLENGER)
    if challenger is None:
        raise PsyllmError("no challenger in the registry; run `psyllm register` (or `psyllm run`) first")
    champion = registry.by_alias(registry.CHAMPION)
    if champion is not None and champion.number == challenger.number:
        decision = Decision(promote=False, reasons=[f"version {challenger.number} is already the champion"])
        return GateOutcome(challenger, champion, decision)
    from components.gate_evidence import gather_evidence, human_evidence  # torch, which register does not need

    variant = challenger_variant(params.active().evaluate.variants)
    evidence = gather_evidence(params, challenger, variant, champion)
    human = human_evidence(params, challenger, champion)
    decision = judge_challenger(evidence, screening_results(params), params.promotion, human)
    registry.record_decision(challenger.number, decision.promote, decision.reasons)
    if decision.promote:
        registry.move_alias(registry.CHAMPION, challenger.number, "passed the promotion gate", GATE_ACTOR)
    return GateOutcome(challenger, champion, decision)


def metrics_table(
    challenger: registry.Version, champion: registry.Version | None
) -> list[dict[str, str | float | None]]:
    """Base, challenger and champion side by side: one row per model, one column per score."""
    models = _compared(challenger.base_metrics, f"challenger v{challenger.number}", challenger.metrics, champion)
    return [{"model": name, **{key: scores.get(key) for key in SCORES}} for name, scores in models]


def _compared(
    base: dict[str, float], challenger_name: str, challenger: dict[str, float], champion: registry.Version | None
) -> list[tuple[str, dict[str, float]]]:
    """The models every comparison shows, in order: the base model, the challenger, the champion if any."""
    models = [("base model", base), (challenger_name, challenger)]
    if champion is not None:
        models.append((f"champion v{champion.number}", champion.metrics))
    return models


def model_card(
    params: Params,
    variant: str,
    metrics: dict[str, float],
    base: dict[str, float],
    champion: registry.Version | None,
    tags: dict[str, str],
) -> str:
    """Markdown for the registry: intended use, limits, data, evaluation and lineage."""
    profile = params.active()
    columns = " | ".join(SCORES)
    table = [f"| model | {columns} |", "|---" * (len(SCORES) + 1) + "|"]
    for name, scores in _compared(base, f"this model ({variant})", metrics, champion):
        if scores:
            table.append(f"| {name} | " + " | ".join(_format(scores.get(key)) for key in SCORES) + " |")
    screening = screening_results(params)
    screening_lines = [
        f"- {split} messages, {language}: urgent recall {_format(values['urgent_recall'])}, "
        f"precision {_format(values['urgent_precision'])}"
        for split, languages in sorted(screening.items())
        for language, values in sorted(languages.items())
    ] or ["- not evaluated"]
    data = [f"- `{key.removeprefix(DATA_TAG)}`: {value}" for key, value in tags.items() if key.startswith(DATA_TAG)]
    crawled = "the sample site" if profile.crawl.sample_site else ", ".join(profile.crawl.seeds)
    qa_sources = ", ".join(str(source) for source in profile.prepare.qa_sources)
    return "\n".join(
        [
            f"# Psy-LLM counselling answer model ({variant})",
            "",
            "## Intended use",
            "Drafting supportive, psychoeducational answers to counselling questions in English and Chinese, "
            "for counsellors to review, and answering help-seekers behind the service's urgent-case screening. "
            "Every message is screened first; urgent ones get crisis resources and reach a human.",
            "",
            "## Limits",
            "- Not a clinician: it can be wrong, generic or inappropriate, and it does not diagnose.",
            "- Never the only reply to an urgent (crisis) message; the service leads with crisis resources.",
            f"- Trained on small data in this profile ({params.profile}); base model `{profile.model.base}`.",
            "",
            "## Data",
            f"- Pretraining corpus: psychoeducation pages crawled from {crawled}, PII-scrubbed.",
            f"- Fine-tuning Q&A: {qa_sources}, PII-scrubbed, split without leaks.",
            "- DVC hashes of every data output (`dvc pull` retrieves them):",
            *data,
            "",
            "## Evaluation (test split)",
            *table,
            "",
            f"Real benchmark `{tags['psyllm.benchmark_version']}`: "
            f"{tags['psyllm.benchmark_questions_per_source']} questions per source scored "
            f"(missing sources: {tags['psyllm.benchmark_missing_sources']}); the changes from the base model with "
            "their intervals, and every question's record, are in the evaluate run's `model_eval` artifacts.",
            "",
            "Urgent-case screening (frozen written and real test splits):",
            *screening_lines,
            "",
            "## Lineage",
            f"- code: git commit `{tags.get('psyllm.git_commit', 'unknown')}`",
            f"- params: profile `{params.profile}` (params.yaml and dvc.lock are logged with the register run)",
            *(f"- {key}: `{value}`" for key, value in tags.items() if key in RUN_TAGS),
        ]
    )


def _format(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
