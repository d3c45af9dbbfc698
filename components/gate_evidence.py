"""The gate's evidence: the challenger and its reference scored on the same questions in this run.

The challenger's records are those `evaluate` wrote for the registered model. The reference is
the champion, scored now on the very questions, prompts and decoding settings the challenger was
(cached by the champion's digest and the questions' key, so an unchanged champion costs nothing on
the next run), or with no champion the base model from the same evaluation. The questions are the
real benchmark's sample where any of it is present, else the Q&A test split; the evidence names which.
When the policy asks for human evidence, the raters' blind preferences between the challenger and
the champion are pooled over every campaign in the service's store that compares exactly those two.
"""

import hashlib
import json
from pathlib import Path

from components import registry
from components.benchmark import load_benchmark
from components.config import Params, Profile
from components.errors import PsyllmError
from components.human_eval import NotComputable, blind_comparison
from components.jsonl import read_jsonl, write_jsonl
from components.lineage import folder_digest
from components.modelling.evaluate import evaluation_sets, read_records, score_model, scoring_precision
from components.modelling.prompt import PromptTemplate
from components.modelling.scoring import Questions, QuestionScore, compare
from components.promotion import Evidence, HumanEvidence
from components.results import BenchmarkResults, read_model_evaluation
from components.serving.campaign_store import CampaignStore
from components.serving.settings import service_store
from components.version_folder import MODEL_ARTIFACT

CHAMPION_SCORES = "champion_scores"  # in paths.cache
EXPORTED_MODELS = "registry"  # in paths.cache


def _question_set(name: str, benchmark: BenchmarkResults) -> str:
    if name == "test_split":
        return "the Q&A test split (no real benchmark source is present)"
    scored = "every question" if benchmark.questions_per_source is None else f"{benchmark.questions_per_source}"
    missing = f", missing {', '.join(benchmark.missing_sources)}" if benchmark.missing_sources else ""
    return f"the real benchmark {benchmark.version} ({scored} questions per source{missing})"


def _questions_key(questions: Questions, profile: Profile) -> str:
    """What a model's records on these questions depend on besides the model itself."""
    described = {
        "questions": [[qid, [pair.answer for pair in pairs]] for qid, pairs in questions.items()],
        "block_size": profile.finetune.training.block_size,
        "generation": profile.generation.model_dump(),
        "batch_size": profile.evaluate.batch_size,
        "dtype": scoring_precision(),
    }
    return hashlib.sha256(json.dumps(described, ensure_ascii=False).encode("utf-8")).hexdigest()


def champion_records(params: Params, champion: registry.Version, name: str) -> list[QuestionScore]:
    """The champion's records on set `name`, from the cache or scored now and cached."""
    profile, paths = params.active(), params.paths
    questions = evaluation_sets(profile, paths, load_benchmark(paths.benchmark))[name]
    cache = paths.cache / CHAMPION_SCORES / f"{champion.digest[:16]}-{_questions_key(questions, profile)[:16]}.jsonl"
    if cache.is_file():
        return [QuestionScore(**record) for _, record in read_jsonl(cache)]
    folder = registry.export_model(champion, paths.cache / EXPORTED_MODELS) / MODEL_ARTIFACT
    records = score_model(str(folder), PromptTemplate.load(folder), {name: questions}, profile)[name]
    write_jsonl(cache, (record.as_record() for record in records))
    return records


def gather_evidence(
    params: Params, challenger: registry.Version, variant: str, champion: registry.Version | None
) -> Evidence:
    """The challenger (the evaluated `variant`) against the champion, or the base model when there is none."""
    paths = params.paths
    if folder_digest(paths.finetuned / variant.removeprefix("finetuned_")) != challenger.digest:
        raise PsyllmError(
            f"the evaluation in {paths.model_eval} is not of challenger v{challenger.number}; "
            "run `psyllm run` to evaluate it before the gate decides"
        )
    records = read_records(paths.model_eval)
    name = "benchmark" if "benchmark" in records else "test_split"
    question_set = _question_set(name, read_model_evaluation(paths.model_eval).benchmark)
    if champion is None:
        reference, theirs = "base model", records[name].get("base")
        if theirs is None:
            return Evidence(question_set, reference, None, "the base model was not scored (evaluate.variants)")
    else:
        reference, theirs = f"champion v{champion.number}", champion_records(params, champion, name)
    try:
        overall = compare(records[name][variant], theirs)["overall"]
    except PsyllmError as different:
        return Evidence(question_set, reference, None, str(different))
    return Evidence(question_set, reference, overall, overall.get("skipped"))


def pooled_comparison(campaigns: CampaignStore, challenger: str, champion: str) -> HumanEvidence:
    """Every judgement of every campaign between exactly these two versions, as the challenger's win, loss or tie."""
    pooled, verdicts = [], []
    for name in campaigns.names():
        campaign = campaigns.campaign(name)
        if sorted(campaign["models"]) != sorted((challenger, champion)):
            continue
        pooled.append(name)
        side = "first" if campaign["models"][0] == challenger else "second"
        for row in campaign["judgements"]:
            verdicts.append("tie" if row["preferred"] == "tie" else "win" if row["preferred"] == side else "loss")
    try:
        comparison = blind_comparison(verdicts)
    except NotComputable:
        comparison = None
    return HumanEvidence(champion, tuple(pooled), comparison)


def human_evidence(
    params: Params, challenger: registry.Version, champion: registry.Version | None
) -> HumanEvidence | None:
    """The raters' verdict on challenger vs champion from the service's store; None when the policy does not ask."""
    if not params.promotion.require_human_comparison:
        return None
    if champion is None:
        return HumanEvidence(None)
    store = service_store(Path.cwd())
    try:
        return pooled_comparison(CampaignStore(store.engine), challenger.label, champion.label)
    finally:
        store.close()
