"""`psyllm package`: the champion (or any model), its screener and the service, built into a Bento.

The model and screener (a registered version's own, else the project's) are copied into
`build/bento/model` and `build/bento/screener` (with the prepared corpus, which the console's
retrieval reads), the layout of an exported version, which
bentofile.yaml includes and where the service looks first, so the built Bento serves with no
tracking server and no project around it. The folder is removed once the Bento is built, so
the project itself keeps serving what `serve.model` names. The build is offline
(`lock_packages: false`): nothing is resolved or fetched.
"""

import shutil
from pathlib import Path

import bentoml

from components.config import CORPUS_FILE
from components.locations import BENTO_BUILD_DIR
from components.serving.runtime import articles_file, served_folders, source_folder
from components.version_folder import MODEL_ARTIFACT, SCREENER_ARTIFACT, VERSION_FILE, model_version


def package(root: Path, source: str) -> str:
    """Build the Bento from `root` (the project) and return its tag."""
    model, screener = served_folders(source_folder(source, root), root)
    version = model_version(model)
    baked = root / BENTO_BUILD_DIR
    shutil.rmtree(baked, ignore_errors=True)
    try:
        shutil.copytree(model, baked / MODEL_ARTIFACT)
        (baked / MODEL_ARTIFACT / VERSION_FILE).write_text(version, encoding="utf-8")
        shutil.copytree(screener, baked / SCREENER_ARTIFACT)
        if (articles := articles_file(root)).is_file():
            shutil.copy(articles, baked / CORPUS_FILE)
        bento = bentoml.bentos.build_bentofile(
            str(root / "bentofile.yaml"), build_ctx=str(root), labels={"psyllm.model_version": version}
        )
    finally:
        shutil.rmtree(baked, ignore_errors=True)
    return str(bento.tag)
