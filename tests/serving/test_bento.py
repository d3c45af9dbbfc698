"""`psyllm package` bakes a registered model into a Bento, which `bentoml serve` runs with no tracking server."""

import re
import subprocess

import httpx
from ruamel.yaml import YAML

from tests.conftest import free_port
from tests.pipeline.project import BIN, clone_project, run
from tests.serving.servers import running
from tests.serving.test_service import WORRY


def test_a_packaged_registry_model_serves_from_the_bento_alone(smoke_project, tmp_path):
    project = clone_project(tmp_path / "project")
    bentoml_home = {"BENTOML_HOME": str(tmp_path / "bentoml")}
    smoke_registry = {  # read, not written: the version is exported into the clone
        "MLFLOW_TRACKING_URI": f"sqlite:///{smoke_project / 'mlruns/mlflow.db'}",
        "PSYLLM_SCREENER_DIR": str(smoke_project / "data/screener"),
    }
    packaged = run(
        project,
        str(BIN / "psyllm"),
        "package",
        "--model",
        "models:/psyllm@challenger",
        **bentoml_home,
        **smoke_registry,
    )
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    tag = re.search(r"built Bento (psyllm:\w+)", packaged.stdout)[1]

    bento = tmp_path / "bentoml/bentos" / tag.replace(":", "/")
    assert YAML(typ="safe").load((bento / "bento.yaml").read_text())["service"] == "service:PsyLLM"
    included = {path.relative_to(bento / "src").as_posix() for path in (bento / "src").rglob("*") if path.is_file()}
    assert {
        "service.py",
        "params.yaml",
        "build/bento/model/model.safetensors",
        "build/bento/screener/screener.json",
    } <= included
    assert not any(path.startswith(("mlruns", "data/", ".dvc")) for path in included)  # the model travels baked in only

    dockerfile = tmp_path / "Dockerfile"
    subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            f"import bentoml; bentoml.container.get_containerfile({tag!r}, output_path={str(dockerfile)!r})",
        ],
        env={**bentoml_home, "PATH": str(BIN), "BENTOML_DO_NOT_TRACK": "true"},
        check=True,
        capture_output=True,
    )
    containerfile = dockerfile.read_text()  # what `bentoml containerize` would build, were Docker here
    assert "ENTRYPOINT" in containerfile and "ENV HF_HUB_OFFLINE=$HF_HUB_OFFLINE" in containerfile

    port = free_port()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **bentoml_home,
        "PSYLLM_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",  # nothing listens: the Bento must not need it
    }
    with running(
        elsewhere, [str(BIN / "bentoml"), "serve", tag, "--port", str(port)], env, port, tmp_path / "bento.log"
    ) as url:
        reply = httpx.post(f"{url}/answer", json={"question": WORRY, "max_new_tokens": 8}, timeout=60).json()
    assert reply["model_version"] == "psyllm/1" and reply["screening"]["level"] == "none"
