"""`psyllm package`: the champion (or any model), its screener and the service, built into a Bento.

The model and screener are copied into `build/bento/`, which bentofile.yaml includes and where
the service looks first, so the built Bento serves with no tracking server and no project
around it. The folder is removed once the Bento is built, so the project itself keeps serving
what `serve.model` names. The build is offline: `lock_packages: false`, nothing is resolved or fetched.
"""

import shutil
from pathlib import Path

import bentoml

from components.locations import BENTO_BUILD_DIR
from components.registry import VERSION_FILE
from components.serving.runtime import model_folder, model_version, screener_folder


def package(root: Path, source: str) -> str:
    """Build the Bento from `root` (the project) and return its tag."""
    folder = model_folder(source, root)
    screener_dir = screener_folder(root)
    baked = root / BENTO_BUILD_DIR
    shutil.rmtree(baked, ignore_errors=True)
    try:
        shutil.copytree(folder, baked / "model")
        (baked / "model" / VERSION_FILE).write_text(model_version(folder), encoding="utf-8")
        shutil.copytree(screener_dir, baked / "screener")
        bento = bentoml.bentos.build_bentofile(
            str(root / "bentofile.yaml"), build_ctx=str(root), labels={"psyllm.model_version": model_version(folder)}
        )
    finally:
        shutil.rmtree(baked, ignore_errors=True)
    return str(bento.tag)
