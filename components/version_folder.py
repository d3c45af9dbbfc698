"""A registered version on disk: its answer model and its screener, side by side.

The layout is the registered pyfunc's artefacts (`model/`, `screener/`), which `psyllm serve`
exports a `models:/` URI into and `psyllm package` bakes into a Bento; `model/` also records the
version it is, which the service reports. Kept apart from the registry (MLflow takes seconds to
import) so that whatever only looks at such a folder, as serving does, never imports it.
"""

from pathlib import Path

from components.screening.screener import MANIFEST_FILE

MODEL_ARTIFACT = "model"
SCREENER_ARTIFACT = "screener"
VERSION_FILE = "registered_version.txt"  # in model/: the registered version it is


def is_version_folder(folder: Path) -> bool:
    """Whether `folder` holds a version's answer model and its screener (exported, or baked into a Bento)."""
    return (folder / MODEL_ARTIFACT).is_dir() and (folder / SCREENER_ARTIFACT / MANIFEST_FILE).is_file()


def model_version(model: Path) -> str:
    """What the service reports as `model_version`: the registered version if recorded, else the folder."""
    recorded = model / VERSION_FILE
    return recorded.read_text(encoding="utf-8").strip() if recorded.is_file() else str(model)
