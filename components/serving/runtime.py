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
from typing import TYPE_CHECKING

from components.config import CORPUS_FILE, ServeConfig, load_params
from components.console.accounts import Accounts
from components.console.console import Console
from components.console.conversations import Conversations
from components.console.keys import ConsoleKeys
from components.console.metrics import ConsoleMetrics
from components.console.retrieval import ArticleIndex
from components.errors import PsyllmError
from components.locations import BENTO_BUILD_DIR, PARAMS_FILE, SCREENER_DIR_ENV
from components.screening.screener import MANIFEST_FILE, Screener
from components.serving.settings import serve_config
from components.serving.store import Store, resolve_store_url
from components.version_folder import MODEL_ARTIFACT, SCREENER_ARTIFACT, is_version_folder, model_version

if TYPE_CHECKING:
    from components.serving.answering import Answerer


def source_folder(source: str, root: Path) -> Path:
    """The folder to serve for `source`: a registry URI's version exported once, or a folder as it is."""
    if source.startswith("models:/"):
        from components import registry  # MLflow: only for a registry URI

        return registry.export_model(registry.resolve(source), root / ".cache" / "serving")
    folder = Path(source) if Path(source).is_absolute() else root / source
    if not folder.is_dir():
        raise PsyllmError(f"serve.model: {source} is neither a models:/ URI nor a model folder")
    return folder


def served_folders(folder: Path, root: Path, environ: Mapping[str, str] = os.environ) -> tuple[Path, Path]:
    """The model and screener folders to load: a version's own (exported, or baked into a Bento),
    or a plain model folder with the project's screener."""
    if is_version_folder(folder):
        return folder / MODEL_ARTIFACT, folder / SCREENER_ARTIFACT
    return folder, screener_folder(root, environ)


def screener_folder(root: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """$PSYLLM_SCREENER_DIR, else paths.screener, checked to hold a trained screener."""
    folder = Path(environ.get(SCREENER_DIR_ENV, load_params(root / PARAMS_FILE).paths.screener))
    folder = folder if folder.is_absolute() else root / folder
    if not (folder / MANIFEST_FILE).is_file():
        raise PsyllmError(f"no trained screener in {folder}/; run `psyllm run` (or set {SCREENER_DIR_ENV})")
    return folder


def load_answerer(model: Path, screener: Path, config: ServeConfig, store: Store | None) -> "Answerer":
    """The answerer over a model folder and a screener folder: what the service and the registered model run.

    The model's libraries are imported here, where a model loads, not with this module: `psyllm
    serve` and BentoML's process manager import it too, and never load a model.
    """
    import torch

    from components.hardware import inference_dtype
    from components.modelling.base_model import load_model
    from components.modelling.prompt import PromptTemplate
    from components.modelling.stored_generation import load_generation
    from components.serving.answering import Answerer

    template, generation = PromptTemplate.load(model), load_generation(model)
    weights, tokenizer = load_model(model, inference_dtype(torch.device("cpu")))
    return Answerer(
        weights, tokenizer, template, generation, Screener.load(screener), store, config, model_version(model)
    )


def articles_file(root: Path) -> Path:
    """The crawled corpus the console retrieves from: a Bento's own copy, else the project's prepared corpus."""
    baked = root / BENTO_BUILD_DIR / CORPUS_FILE
    return baked if baked.is_file() else root / load_params(root / PARAMS_FILE).paths.prepared / CORPUS_FILE


def build_console(answerer: "Answerer", root: Path, environ: Mapping[str, str] = os.environ) -> Console | None:
    """The counsellor console over the answerer's store, or None when no console key is set."""
    keys = ConsoleKeys.from_environment(environ)
    if keys is None or answerer.store is None:
        return None
    engine = answerer.store.engine  # opening the store brought its schema up to date
    console = Console(
        answerer, Conversations(engine, keys), Accounts(engine, keys), ArticleIndex.from_corpus(articles_file(root)),
        ConsoleMetrics(), answerer.config.retention_days,
    )  # fmt: skip
    console.start()
    return console


def build_answerer(root: Path, environ: Mapping[str, str] = os.environ) -> "Answerer":
    """Everything an answer needs, loaded once at start-up; a clear PsyllmError if anything is missing."""
    config = serve_config(root, environ)
    model, screener = served_folders(source_folder(config.model, root), root, environ)
    return load_answerer(model, screener, config, Store(resolve_store_url(config.store_url, root), config.store_text))
