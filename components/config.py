"""Typed profiles read from `params.yaml`, the one place where step settings live.

`params.yaml` names the active `profile` and holds one complete section per profile
(`smoke`, `default`, `paper`). DVC tracks those params, so changing a field through this
file (or `psyllm profile`, which writes it) is how DVC learns what is stale. Models have
no defaults and forbid unknown keys: the YAML mirrors the types exactly.
"""

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from components.errors import PsyllmError

ProfileName = Literal["smoke", "default", "paper"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("smoke", "default", "paper")
PARAMS_FILE = Path("params.yaml")
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


class Paths(StrictModel):
    """Where each step writes. Shared by all profiles and read by dvc.yaml as ${paths.*}."""

    crawl: Path
    prepared: Path
    screener: Path
    screener_eval: Path
    cache: Path
    checkpoints: Path
    pretrained: Path
    finetuned: Path
    model_eval: Path


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
    real_labels: Path  # hand labels for real messages, by id (texts stay in shared_data)
    shared_data: Path  # the public data sets the real messages come from

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
    `base` (fine-tune only, the evaluation's control row).
    """

    starts: list[Literal["pretrained", "base"]]
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
    """Decoding settings, shared by evaluation and serving."""

    max_new_tokens: Positive
    do_sample: bool
    temperature: Annotated[float, Field(gt=0)]
    top_p: Annotated[float, Field(gt=0, le=1)]
    repetition_penalty: Annotated[float, Field(ge=1)]
    batch_size: Positive


class EvaluateConfig(StrictModel):
    """The paper's protocol on the test split: perplexity and bits/char, ROUGE-L, Distinct-1/2."""

    rows: list[Literal["base", "finetuned_base", "finetuned_pretrained"]]
    max_questions: Positive | None
    samples_in_report: Annotated[int, Field(ge=0)]
    generation: GenerationConfig


class Profile(StrictModel):
    """Every step's settings for one scale of run."""

    crawl: CrawlConfig
    prepare: PrepareConfig
    model: ModelConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    evaluate: EvaluateConfig

    @model_validator(mode="after")
    def _rows_are_trained(self) -> "Profile":
        needed = {"finetuned_base": "base", "finetuned_pretrained": "pretrained"}
        for row in self.evaluate.rows:
            if row in needed and needed[row] not in self.finetune.starts:
                raise ValueError(f"evaluate.rows: {row!r} needs {needed[row]!r} in finetune.starts")
        return self


class PromotionPolicy(StrictModel):
    """When a challenger may replace the champion (see components/promotion.py)."""

    min_perplexity_gain: Annotated[float, Field(ge=0, lt=1)]
    max_rouge_l_drop: Annotated[float, Field(ge=0, le=1)]
    min_rouge_l: Annotated[float, Field(ge=0, le=1)]
    screening_min_recall: Annotated[float, Field(ge=0, le=1)]
    screening_min_precision: Annotated[float, Field(ge=0, le=1)]
    screening_real_min_recall: Annotated[float, Field(ge=0, le=1)]
    screening_real_min_precision: Annotated[float, Field(ge=0, le=1)]


class BatchingConfig(StrictModel):
    """How the service groups concurrent requests into one decoding batch of `generation.batch_size`."""

    max_wait_ms: Annotated[int, Field(ge=0)]
    max_queue: Positive  # waiting requests; one more gets 503 with Retry-After
    retry_after_s: Positive


class ServeConfig(StrictModel):
    """The service's settings; the environment overrides the deployment-specific ones.

    PSYLLM_MODEL, PSYLLM_STORE_URL, PSYLLM_STORE_TEXT and PSYLLM_REGION override `model`,
    `store_url`, `store_text` and `region`; the case-queue API key comes only from
    PSYLLM_API_KEY, never from a file in the repository.
    """

    model: str
    store_url: str
    store_text: bool
    region: str | None
    max_question_chars: Positive
    max_description_chars: Positive
    max_description_tokens: Positive
    max_new_tokens: Positive  # the most a request may ask for; `generation.max_new_tokens` is the default
    generation: GenerationConfig
    batching: BatchingConfig


class Params(StrictModel):
    """The whole of params.yaml."""

    profile: ProfileName
    paths: Paths
    screening: ScreeningConfig
    promotion: PromotionPolicy
    serve: ServeConfig
    smoke: Profile
    default: Profile
    paper: Profile

    def active(self) -> Profile:
        """The section named by `profile`."""
        return getattr(self, self.profile)


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        if problem["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key")
        elif problem["type"] == "literal_error":
            lines.append(f"  {where}: {problem['msg']} (got {problem['input']!r})")
        else:
            lines.append(f"  {where}: {problem['msg']}")
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
        raise PsyllmError(f"{path}: invalid parameters:\n{_describe(invalid)}") from invalid


def load_profile(path: Path = PARAMS_FILE) -> Profile:
    """The active profile's settings, which is what every step runs with."""
    return load_params(path).active()


def check_profile_name(name: str) -> None:
    """A clear error for a profile that params.yaml does not have."""
    if name not in PROFILE_NAMES:
        raise PsyllmError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")


def set_profile(name: str, path: Path = PARAMS_FILE) -> None:
    """Switch the active profile by rewriting only the `profile:` line, so DVC sees the change."""
    check_profile_name(name)
    text = path.read_text(encoding="utf-8")
    updated, replaced = _PROFILE_LINE.subn(f"profile: {name}", text, count=1)
    if not replaced:
        raise PsyllmError(f"{path}: no top-level 'profile:' line to change")
    path.write_text(updated, encoding="utf-8")
    load_params(path)
