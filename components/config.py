"""Typed profiles read from `params.yaml`, the one place where step settings live.

`params.yaml` holds every step's settings once, under `defaults`, and each profile under
`profiles` lists only what it changes; `profile` names the active one. The defaults live in
the YAML rather than in these models, so DVC tracks every value, and the models forbid
unknown keys, so a typo is an error and not a silent default.
"""

import copy
import io
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from components.errors import PsyllmError
from components.locations import PARAMS_FILE

_PROFILE_LINE = re.compile(r"^profile:[^\n#]*", re.MULTILINE)

Positive = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class StrictModel(BaseModel):
    """Rejects unknown keys, so a typo in params.yaml is an error and not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CrawlConfig(StrictModel):
    """What to fetch and how politely. With `sample_site` set, that folder is served on loopback."""

    sample_site: Path | None
    sample_site_port: Annotated[int, Field(ge=1, le=65535)]
    seeds: list[str]
    allowed_domains: list[str]
    max_pages: Positive
    max_depth: Positive
    concurrency: Positive
    per_host_delay_s: Annotated[float, Field(ge=0)]
    timeout_s: Annotated[float, Field(gt=0)]
    max_retries: Annotated[int, Field(ge=0)]
    backoff_base_s: Annotated[float, Field(ge=0)]
    max_redirects: Annotated[int, Field(ge=0)]
    max_page_bytes: Positive
    user_agent: Annotated[str, Field(min_length=3)]

    @model_validator(mode="after")
    def _has_somewhere_to_start(self) -> "CrawlConfig":
        if self.sample_site is None and not self.seeds:
            raise ValueError("set crawl.seeds (URLs) or crawl.sample_site (a folder to serve)")
        if self.sample_site is not None and (self.seeds or self.allowed_domains):
            raise ValueError("crawl.sample_site serves its own root: leave seeds and allowed_domains empty")
        return self


class CorpusFile(StrictModel):
    """A local long-form text source: .txt/.md as one document, .json/.jsonl joined from fields."""

    path: Path
    text_fields: list[str]
    source: str


class SplitFractions(StrictModel):
    """Share of question groups per split; the three must add up to 1."""

    train: Fraction
    validation: Fraction
    test: Fraction

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SplitFractions":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"prepare.split.* must add up to 1, got {total:g}")
        return self


class PrepareConfig(StrictModel):
    """How crawled pages and Q&A sources become a clean corpus and leak-free splits."""

    corpus_files: list[CorpusFile]
    qa_sources: list[Path]
    languages: list[str]
    min_doc_chars: Positive
    boilerplate_doc_fraction: Fraction
    near_duplicate_threshold: Fraction
    minhash_permutations: Positive
    split: SplitFractions
    split_salt: str


CORPUS_FILE = "corpus.jsonl"  # in paths.prepared: the cleaned corpus pretraining reads
PREPARE_INPUTS_FILE = "prepare_inputs.json"  # in paths.config: the digest of every file prepare reads
QA_DIR = "qa"  # in paths.prepared: the Q&A splits, one JSONL file each


class Paths(StrictModel):
    """Where each step writes. Shared by all profiles and read by dvc.yaml as ${paths.*}."""

    config: Path  # the active profile's sections, one JSON file each: what DVC stages depend on
    crawl: Path
    prepared: Path
    screener: Path
    screener_eval: Path
    cache: Path
    checkpoints: Path
    pretrained: Path
    finetuned: Path
    model_eval: Path
    benchmark: Path  # the real benchmark's questions and manifest, built from shared_data
    feedback: Path  # `psyllm export-feedback`: rated campaign answers as Q&A pairs (DVC-tracked, not in git)
    shared_data: Path  # read only: the public data sets (texts never copied into the project)

    @property
    def corpus(self) -> Path:
        return self.prepared / CORPUS_FILE

    @property
    def qa(self) -> Path:
        return self.prepared / QA_DIR


class NgramBlock(StrictModel):
    """One block of hashed n-grams: words, characters, or characters inside whitespace-split words."""

    analyzer: Literal["word", "char", "char_wb"]
    min_n: Annotated[int, Field(ge=1, le=6)]
    max_n: Annotated[int, Field(ge=1, le=6)]

    @model_validator(mode="after")
    def _ordered(self) -> "NgramBlock":
        if self.min_n > self.max_n:
            raise ValueError(f"n-gram block {self.analyzer}: min_n {self.min_n} is above max_n {self.max_n}")
        return self


class ScreeningFeatures(StrictModel):
    """What one language's learned heads read: n-gram blocks, and frozen MiniLM embeddings or not."""

    ngrams: Annotated[list[NgramBlock], Field(min_length=1)]
    sentence_embedding: bool


class ScreeningConfig(StrictModel):
    """How the urgent-case screener is trained and checked.

    One section for every profile: the safety net must not get weaker in a smoke run.
    """

    labelled_sets: list[Path]
    features: dict[Literal["en", "zh"], ScreeningFeatures]
    hash_features: Annotated[int, Field(ge=1024)]
    regularisation: Annotated[float, Field(gt=0)]
    cv_folds: Annotated[int, Field(ge=2)]
    target_recall: Fraction
    seed: int
    real_labels: Path  # hand labels for real messages, by id (texts stay in paths.shared_data)

    @model_validator(mode="after")
    def _features_for_every_language(self) -> "ScreeningConfig":
        if set(self.features) != {"en", "zh"}:
            raise ValueError(f"screening.features needs exactly en and zh, got {sorted(self.features)}")
        return self


class TinyArchitecture(StrictModel):
    """A small Gemma-3-shaped model built from config, with a tokenizer trained on the corpus."""

    vocab_size: Annotated[int, Field(ge=300)]
    hidden_size: Positive
    intermediate_size: Positive
    layers: Positive
    heads: Positive
    kv_heads: Positive
    head_dim: Positive
    context: Positive


class ModelConfig(StrictModel):
    """The base model every step starts from (see components/modelling/base_model.py).

    `base` is `tiny` (built from `tiny`), a packaged GGUF name, a `.gguf` file, a local
    model folder, or a Hugging Face id (needs the hub cache or a network).
    """

    base: Annotated[str, Field(min_length=1)]
    tiny: TinyArchitecture | None
    seed: int
    # torch's CPU threads in the model steps; null keeps torch's default (one per core).
    cpu_threads: Positive | None

    @model_validator(mode="after")
    def _tiny_needs_architecture(self) -> "ModelConfig":
        if self.base == "tiny" and self.tiny is None:
            raise ValueError("model.tiny: required when model.base is 'tiny'")
        return self


class AdapterConfig(StrictModel):
    """Which weights train: all of them (`full`) or low-rank adapters (`lora`, merged for export)."""

    method: Literal["full", "lora"]
    rank: Positive
    alpha: Positive
    dropout: Annotated[float, Field(ge=0, lt=1)]
    targets: list[str]
    freeze_embeddings: bool


class TrainingConfig(StrictModel):
    """One training run: batch shape, schedule, optimiser, checkpoints. Shared by pretrain and finetune."""

    block_size: Positive
    micro_batch_size: Positive
    gradient_accumulation: Positive
    max_steps: Positive
    learning_rate: Annotated[float, Field(gt=0)]
    min_learning_rate: Annotated[float, Field(ge=0)]
    warmup_steps: Annotated[int, Field(ge=0)]
    weight_decay: Annotated[float, Field(ge=0)]
    max_grad_norm: Annotated[float, Field(gt=0)]
    loss_chunk_size: Positive
    checkpoint_every: Positive
    adapter: AdapterConfig
    seed: int


class PretrainConfig(StrictModel):
    """Continued causal-LM pretraining on the prepared corpus, subsampled to fit the budget."""

    max_documents: Positive | None
    training: TrainingConfig


class FinetuneConfig(StrictModel):
    """Supervised fine-tuning on the Q&A train split; loss on answer tokens only.

    `starts` lists the models fine-tuned: `pretrained` (domain pretrain + fine-tune) and
    `base` (fine-tune only, the evaluation's control variant).
    """

    starts: list[Literal["pretrained", "base"]]
    balance_languages: bool
    max_description_tokens: Positive
    min_answer_tokens: Positive
    eval_every: Positive
    patience: Positive
    training: TrainingConfig

    @model_validator(mode="after")
    def _starts_known_once(self) -> "FinetuneConfig":
        if not self.starts or len(set(self.starts)) != len(self.starts):
            raise ValueError("finetune.starts: list each of 'pretrained', 'base' at most once, and at least one")
        return self


class GenerationConfig(StrictModel):
    """How a model decodes. Fine-tuning stores it with the model, so evaluation and serving decode alike."""

    max_new_tokens: Positive  # the answer length evaluated, and the service's default
    do_sample: bool
    temperature: Annotated[float, Field(gt=0)]
    top_p: Annotated[float, Field(gt=0, le=1)]
    repetition_penalty: Annotated[float, Field(ge=1)]


class EvaluateConfig(StrictModel):
    """The paper's protocol on the test split: perplexity and bits/char, ROUGE-L, Distinct-1/2."""

    variants: list[Literal["base", "finetuned_base", "finetuned_pretrained"]]
    max_questions: Positive | None
    benchmark_questions: Positive | None  # per source of the real benchmark; None: every question
    samples_in_report: Annotated[int, Field(ge=0)]
    batch_size: Positive  # questions decoded together


class Profile(StrictModel):
    """Every step's settings for one scale of run."""

    crawl: CrawlConfig
    prepare: PrepareConfig
    model: ModelConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    generation: GenerationConfig
    evaluate: EvaluateConfig

    @property
    def pretrain_needed(self) -> bool:
        """Whether a fine-tune start reads the pretrained model; without one, `pretrain` trains nothing."""
        return "pretrained" in self.finetune.starts

    @model_validator(mode="after")
    def _rows_are_trained(self) -> "Profile":
        needed = {"finetuned_base": "base", "finetuned_pretrained": "pretrained"}
        for variant in self.evaluate.variants:
            if variant in needed and needed[variant] not in self.finetune.starts:
                raise ValueError(f"evaluate.variants: {variant!r} needs {needed[variant]!r} in finetune.starts")
        return self


class PromotionPolicy(StrictModel):
    """When a challenger may replace the champion (see components/promotion.py)."""

    min_perplexity_gain: Annotated[float, Field(ge=0, lt=1)]
    max_rouge_l_drop: Annotated[float, Field(ge=0, le=1)]
    screening_min_recall: Annotated[float, Field(ge=0, le=1)]
    screening_min_precision: Annotated[float, Field(ge=0, le=1)]
    screening_real_min_recall: Annotated[float, Field(ge=0, le=1)]
    screening_real_min_precision: Annotated[float, Field(ge=0, le=1)]
    require_human_comparison: bool


class BatchingConfig(StrictModel):
    """How the service decodes concurrent requests together (a request joins the running batch between steps)."""

    batch_size: Positive  # rows decoded together at most
    max_queue: Positive  # waiting requests; one more gets 503 with Retry-After
    retry_after_s: Positive


class ServeConfig(StrictModel):
    """The service's settings; the environment overrides the deployment-specific ones.

    PSYLLM_MODEL, PSYLLM_STORE_URL, PSYLLM_STORE_TEXT and PSYLLM_REGION override `model`,
    `store_url`, `store_text` and `region`; the case-queue API key comes only from
    PSYLLM_API_KEY, never from a file in the repository (components/locations.py lists them all).
    """

    model: str
    store_url: str
    store_text: bool
    region: str | None
    max_question_chars: Positive
    max_description_chars: Positive
    max_new_tokens: Positive  # the most a request may ask for; the model's `generation.max_new_tokens` is the default
    batching: BatchingConfig
    # How long the console keeps what people wrote: older message text is deleted, metadata kept.
    retention_days: Annotated[float, Field(gt=0)]
    # On SIGTERM, how long requests in flight may take before the worker stops; under BentoML's
    # process manager's 30 s, after which it kills the worker.
    shutdown_timeout_s: Annotated[int, Field(ge=1, le=28)]


# A profile's `training` section is shared by these steps; each step's own `training` refines it.
TRAINING_STEPS = ("pretrain", "finetune")


def _merge(base: object, override: object) -> object:
    """`override` on top of `base`: mappings merge key by key; anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def _merge_layers(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = _merge(base, override)
    assert isinstance(merged, dict)
    return merged


def _fold_shared_training(layer: dict[str, Any]) -> dict[str, Any]:
    """One layer (the defaults or a profile) with its shared `training` moved into each step's."""
    if "training" not in layer:
        return layer
    steps = {key: value for key, value in layer.items() if key != "training"}
    for step in TRAINING_STEPS:
        own = steps.get(step) if isinstance(steps.get(step), dict) else {}
        steps[step] = _merge_layers({"training": layer["training"]}, own)
    return steps


def resolve(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A profile's effective settings: the defaults, then the profile's changes, each with its shared training."""
    return _merge_layers(_fold_shared_training(defaults), _fold_shared_training(overrides))


class Params(StrictModel):
    """The whole of params.yaml, with every profile resolved against the defaults."""

    profile: str
    paths: Paths
    screening: ScreeningConfig
    promotion: PromotionPolicy
    serve: ServeConfig
    profiles: dict[str, Profile]

    @model_validator(mode="before")
    @classmethod
    def _resolve_profiles(cls, raw: object) -> object:
        if not isinstance(raw, dict) or "defaults" not in raw:
            return raw
        defaults, profiles = raw["defaults"], raw.get("profiles")
        if not isinstance(defaults, dict) or not isinstance(profiles, dict):
            return raw  # validation then names the section that is not a mapping
        resolved = {
            name: resolve(defaults, overrides or {}) if isinstance(overrides, dict) else overrides
            for name, overrides in profiles.items()
        }
        return {**{key: value for key, value in raw.items() if key != "defaults"}, "profiles": resolved}

    @model_validator(mode="after")
    def _active_profile_exists(self) -> "Params":
        if self.profile not in self.profiles:
            raise ValueError(f"profile: {self.profile!r} is not under profiles ({', '.join(self.profiles)})")
        return self

    def active(self) -> Profile:
        """The profile named by `profile`."""
        return self.profiles[self.profile]

    def check_profile_name(self, name: str) -> None:
        """A clear error for a profile that params.yaml does not have."""
        if name not in self.profiles:
            raise PsyllmError(f"unknown profile {name!r}; choose one of {', '.join(self.profiles)}")


def _holds(tree: object, path: tuple[str | int, ...]) -> bool:
    for part in path:
        in_list = isinstance(tree, list) and isinstance(part, int) and part < len(tree)
        if not (in_list or (isinstance(tree, dict) and part in tree)):
            return False
        tree = tree[part]
    return True


def _written_at(raw: dict[str, Any], loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Where in params.yaml a resolved profile's field was written: the profile's overrides or the defaults."""
    if len(loc) < 3 or loc[0] != "profiles":
        return loc
    name, field = loc[1], loc[2:]
    shared = ("training", *field[2:]) if field[0] in TRAINING_STEPS and field[1:2] == ("training",) else None
    overrides = raw.get("profiles", {}).get(name)
    for layer, tree in ((("profiles", name), overrides), (("defaults",), raw.get("defaults"))):
        for candidate in (field, shared):
            if candidate is not None and _holds(tree, candidate):
                return (*layer, *candidate)
    return ("defaults", *field)


def _describe(error: ValidationError, raw: object) -> str:
    lines: list[str] = []
    for problem in error.errors():
        loc = _written_at(raw, problem["loc"]) if isinstance(raw, dict) else problem["loc"]
        where = ".".join(str(part) for part in loc) or "(top level)"
        if problem["type"] == "extra_forbidden":
            line = f"  {where}: unknown key"
        elif problem["type"] == "literal_error":
            line = f"  {where}: {problem['msg']} (got {problem['input']!r})"
        else:
            line = f"  {where}: {problem['msg'].removeprefix('Value error, ')}"
        if line not in lines:  # a wrong default is wrong in every profile that keeps it
            lines.append(line)
    return "\n".join(lines)


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Parse and validate params.yaml; every problem is reported with its dotted key."""
    try:
        raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as missing:
        raise PsyllmError(f"{path}: not found (run psyllm from the project root)") from missing
    except YAMLError as bad:
        raise PsyllmError(f"{path}: not valid YAML: {bad}") from bad
    try:
        return Params.model_validate(raw)
    except ValidationError as invalid:
        raise PsyllmError(f"{path}: invalid parameters:\n{_describe(invalid, raw)}") from invalid


def load_profile(path: Path = PARAMS_FILE) -> Profile:
    """The active profile's settings, which is what every step runs with."""
    return load_params(path).active()


def write_sections(profile: Profile, folder: Path) -> list[Path]:
    """Each section of `profile` as `folder/<section>.json`.

    The DVC stage `config` writes these for the active profile and every other stage depends on
    the sections it reads, so a stage reruns only when one of its own settings changes, and
    editing a profile that is not active leaves the pipeline up to date. The pretrain section
    also says whether a fine-tune start reads its model (`needed`), so listing or dropping
    `pretrained` in `finetune.starts` makes pretrain stale, and other fine-tune settings do not.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for section in Profile.model_fields:
        path = folder / f"{section}.json"
        settings = getattr(profile, section).model_dump(mode="json")
        if section == "pretrain":
            settings["needed"] = profile.pretrain_needed
        path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def profile_yaml(params: Params, name: str) -> str:
    """A profile's effective settings as YAML, for people to read."""
    params.check_profile_name(name)
    stream = io.StringIO()
    stream.write(f"# profile {name}: params.yaml's defaults with the changes under profiles.{name}\n")
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 4096
    yaml.dump(params.profiles[name].model_dump(mode="json"), stream)
    return stream.getvalue()


def set_profile(name: str, path: Path = PARAMS_FILE) -> None:
    """Switch the active profile by rewriting only the `profile:` line, so DVC sees the change."""
    load_params(path).check_profile_name(name)
    text = path.read_text(encoding="utf-8")
    updated, replaced = _PROFILE_LINE.subn(f"profile: {name}", text, count=1)
    if not replaced:
        raise PsyllmError(f"{path}: no top-level 'profile:' line to change")
    path.write_text(updated, encoding="utf-8")
    load_params(path)
