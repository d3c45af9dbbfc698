"""The Bento `psyllm package` builds: the service, its settings, the baked model and screener, and nothing else.

It is served in every HTTP test (tests/serving/conftest.py), from an empty folder with no tracking server.
"""

import subprocess

from ruamel.yaml import YAML

from tests.pipeline.project import BIN


def test_the_bento_carries_the_service_model_and_screener_and_no_project_data(bento):
    info = YAML(typ="safe").load((bento.folder / "bento.yaml").read_text())
    assert info["service"] == "service:PsyLLM" and info["labels"]["psyllm.model_version"] == "psyllm/1"
    source = bento.folder / "src"
    included = {path.relative_to(source).as_posix() for path in source.rglob("*") if path.is_file()}
    assert {
        "service.py",
        "params.yaml",
        "components/serving/page.html",
        "build/bento/model/model.safetensors",
        "build/bento/model/registered_version.txt",
        "build/bento/screener/screener.json",
    } <= included
    assert not any(path.startswith(("mlruns", "data/", ".dvc", "tests/")) for path in included)


def test_the_container_file_is_generated_without_docker(bento, tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    script = f"import bentoml; bentoml.container.get_containerfile({bento.tag!r}, output_path={str(dockerfile)!r})"
    subprocess.run(
        [str(BIN / "python"), "-c", script],
        env={"BENTOML_HOME": str(bento.home), "PATH": str(BIN), "BENTOML_DO_NOT_TRACK": "true"},
        check=True,
        capture_output=True,
    )
    containerfile = dockerfile.read_text()  # what `bentoml containerize` would build, were Docker here
    assert "ENTRYPOINT" in containerfile and "ENV HF_HUB_OFFLINE=$HF_HUB_OFFLINE" in containerfile
