"""Assembling the service from params.yaml and the environment: settings, model, screener, store.

The model is `$PSYLLM_MODEL`, else the version a Bento carries (`build/bento/`, put there by
`psyllm package`, so a built Bento serves with no tracking server), else `serve.model` (default
`models:/psyllm@champion`). A registry URI is exported once into `.cache/serving/`: the answer
model and the screener registered with it, the same files `mlflow.pyfunc.load_model` answers with
(components/serving/pyfunc.py). A plain fine-tuned folder is served with the project's screener
(`$PSYLLM_SCREENER_DIR`, else `paths.screener`).
"""

import os
from collections.abc import Mapping
from pathlib import Path

from components import registry
from components.config import ServeConfig, load_params
from components.errors import PsyllmError
from components.locations import (
    BENTO_BUILD_DIR,
    MODEL_ENV,
    PARAMS_FILE,
    REGION_ENV,
    SCREENER_DIR_ENV,
    STORE_TEXT_ENV,
    STORE_URL_ENV,
)
from components.modelling.base_model import load_model
from components.modelling.prompt import PromptTemplate
from components.modelling.stored_generation import load_generation
from components.screening.screener import MANIFEST_FILE, Screener
from components.serving.answering import Answerer
from components.serving.store import Store, resolve_store_url
from components.tracking import MODEL_ARTIFACT, SCREENER_ARTIFACT

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def serve_config(root: Path, environ: Mapping[str, str] = os.environ) -> ServeConfig:
    """`serve:` from params.yaml with the environment's overrides applied (and checked)."""
    config = load_params(root / PARAMS_FILE).serve
    update: dict[str, object] = {}
    if MODEL_ENV in environ:
        update["model"] = environ[MODEL_ENV]
    elif (root / BENTO_BUILD_DIR).is_dir():
        update["model"] = str(BENTO_BUILD_DIR)
    if STORE_URL_ENV in environ:
        update["store_url"] = environ[STORE_URL_ENV]
    if REGION_ENV in environ:
        update["region"] = environ[REGION_ENV] or None
    if STORE_TEXT_ENV in environ:
        flag = environ[STORE_TEXT_ENV].strip().lower()
        if flag not in _TRUE | _FALSE:
            raise PsyllmError(f"{STORE_TEXT_ENV}: expected true or false, got {environ[STORE_TEXT_ENV]!r}")
        update["store_text"] = flag in _TRUE
    return config.model_copy(update=update)


def source_folder(source: str, root: Path) -> Path:
    """The folder to serve for `source`: a registry URI's version exported once, or a folder as it is."""
    if source.startswith("models:/"):
        return registry.export_model(registry.resolve(source), root / ".cache" / "serving")
    folder = Path(source) if Path(source).is_absolute() else root / source
    if not folder.is_dir():
        raise PsyllmError(f"serve.model: {source} is neither a models:/ URI nor a model folder")
    return folder


def served_folders(folder: Path, root: Path, environ: Mapping[str, str] = os.environ) -> tuple[Path, Path]:
    """The model and screener folders to load: a version's own (exported, or baked into a Bento),
    or a plain model folder with the project's screener."""
    if registry.is_version_folder(folder):
        return folder / MODEL_ARTIFACT, folder / SCREENER_ARTIFACT
    return folder, screener_folder(root, environ)


def model_version(folder: Path) -> str:
    """What the service reports as `model_version`: the registered version if exported, else the folder."""
    recorded = folder / registry.VERSION_FILE
    return recorded.read_text(encoding="utf-8").strip() if recorded.is_file() else str(folder)


def screener_folder(root: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """$PSYLLM_SCREENER_DIR, else paths.screener, checked to hold a trained screener."""
    folder = Path(environ.get(SCREENER_DIR_ENV, load_params(root / PARAMS_FILE).paths.screener))
    folder = folder if folder.is_absolute() else root / folder
    if not (folder / MANIFEST_FILE).is_file():
        raise PsyllmError(f"no trained screener in {folder}/; run `psyllm run` (or set {SCREENER_DIR_ENV})")
    return folder


def load_answerer(model: Path, screener: Path, config: ServeConfig, store: Store | None) -> Answerer:
    """The answerer over a model folder and a screener folder: what the service and the registered model run."""
    template, generation = PromptTemplate.load(model), load_generation(model)
    weights, tokenizer = load_model(model)
    return Answerer(
        weights, tokenizer, template, generation, Screener.load(screener), store, config, model_version(model)
    )


def service_store(root: Path, url: str | None = None) -> Store:
    """The service's store (or the one at `url`) for reading ratings and campaigns outside the service:
    the CLI's reports and the gate. Text storage is off, so nothing written here keeps what a person wrote."""
    return Store(resolve_store_url(url or serve_config(root).store_url, root), store_text=False)


def build_answerer(root: Path, environ: Mapping[str, str] = os.environ) -> Answerer:
    """Everything an answer needs, loaded once at start-up; a clear PsyllmError if anything is missing."""
    config = serve_config(root, environ)
    model, screener = served_folders(source_folder(config.model, root), root, environ)
    return load_answerer(model, screener, config, Store(resolve_store_url(config.store_url, root), config.store_text))
