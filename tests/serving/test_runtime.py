"""Service settings and model resolution: environment overrides, clear errors, a version's own screener, and
a start-up that loads the model's libraries only where the model loads."""

import subprocess
import sys

import pytest

from components.errors import PsyllmError
from components.serving.runtime import screener_folder, served_folders, source_folder
from components.serving.settings import serve_config
from tests.conftest import PROJECT_ROOT


def test_the_environment_overrides_the_deployment_settings():
    environ = {"PSYLLM_MODEL": "some/folder", "PSYLLM_STORE_TEXT": "yes", "PSYLLM_REGION": "GB"}
    config = serve_config(PROJECT_ROOT, environ)
    assert (config.model, config.store_text, config.region) == ("some/folder", True, "GB")
    assert serve_config(PROJECT_ROOT, {}).model == "models:/psyllm@champion"
    with pytest.raises(PsyllmError, match="PSYLLM_STORE_TEXT: expected true or false, got 'maybe'"):
        serve_config(PROJECT_ROOT, {"PSYLLM_STORE_TEXT": "maybe"})


def test_a_missing_model_or_screener_is_one_clear_error(tmp_path):
    with pytest.raises(PsyllmError, match="is neither a models:/ URI nor a model folder"):
        source_folder(str(tmp_path / "nowhere"), tmp_path)
    with pytest.raises(PsyllmError, match="expected models:/psyllm@ALIAS or models:/psyllm/NUMBER"):
        source_folder("models:/other@champion", tmp_path)
    (tmp_path / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text())  # paths.screener
    with pytest.raises(PsyllmError, match="no trained screener in"):
        screener_folder(tmp_path, {})


def test_a_bento_serves_the_version_baked_into_it_with_that_versions_screener(tmp_path):
    (tmp_path / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text())
    (tmp_path / "build/bento/model").mkdir(parents=True)
    (tmp_path / "build/bento/screener").mkdir()
    (tmp_path / "build/bento/screener/screener.json").write_text("{}")
    assert serve_config(tmp_path, {}).model == "build/bento"
    assert serve_config(tmp_path, {"PSYLLM_MODEL": "elsewhere"}).model == "elsewhere"  # the environment wins
    baked = source_folder("build/bento", tmp_path)
    elsewhere = {"PSYLLM_SCREENER_DIR": str(tmp_path / "other")}  # applies to plain model folders only
    assert served_folders(baked, tmp_path, elsewhere) == (baked / "model", baked / "screener")
    with pytest.raises(PsyllmError, match="no trained screener in"):
        served_folders(baked / "model", tmp_path, elsewhere)  # a plain folder takes the project's screener


def test_what_starts_the_service_imports_no_model_or_registry_library():
    # BentoML's process manager imports service.py only to read its configuration, and `psyllm serve`
    # only resolves a folder; the worker alone loads the model (a restart waits for each of them).
    check = (
        "import sys, service, flows.cli, components.serving.runtime\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'transformers', 'mlflow', 'sklearn'}))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", check], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert imported == "[]"
