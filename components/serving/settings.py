"""The service's settings and store, as the CLI reads them: params.yaml's `serve:` and the environment.

Kept apart from components/serving/runtime.py, which loads models, so that the verbs that only read
or change the store (reports, counsellors, retention) start in a fraction of a second.
"""

import os
from collections.abc import Mapping
from pathlib import Path

from components.config import ServeConfig, load_params
from components.errors import PsyllmError
from components.locations import BENTO_BUILD_DIR, MODEL_ENV, PARAMS_FILE, REGION_ENV, STORE_TEXT_ENV, STORE_URL_ENV
from components.serving.store import Store, resolve_store_url

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


def service_store(root: Path, url: str | None = None, create: bool = True) -> Store:
    """The service's store (or the one at `url`) for reading ratings and campaigns outside the service:
    the CLI's reports and the gate. Text storage is off, so nothing written here keeps what a person wrote.
    With `create` off, a SQLite store that is not there is an error (`resolve_store_url`)."""
    return Store(resolve_store_url(url or serve_config(root).store_url, root, create), store_text=False)
