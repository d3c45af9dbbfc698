"""Every place psyllm uses besides the step outputs, and every environment variable it reads.

The step outputs are `paths:` in params.yaml, which DVC tracks. These are the files around them:
settings, run-local state and stores that DVC does not track. Relative paths are relative to the
project root, the working directory of every psyllm command.
"""

from pathlib import Path

PARAMS_FILE = Path("params.yaml")
DVC_LOCK_FILE = Path("dvc.lock")
# Run-local state, git-ignored: the run lock, the last model card, resumable checkpoints (paths.checkpoints).
STATE_DIR = Path(".state")
RUN_LOCK_FILE = STATE_DIR / "run.lock"
MODEL_CARD_FILE = STATE_DIR / "model_card.md"
MLFLOW_LOCAL_STORE = Path("mlruns")  # MLflow on SQLite, when no tracking server is set
PREFECT_LOCAL_HOME = Path(".prefect")  # Prefect's temporary local API, when no server is set
BENTO_BUILD_DIR = Path("build/bento")  # what `psyllm package` bakes into a Bento; exists only inside one

# The service's deployment settings: each overrides its `serve:` field or `paths.screener`.
MODEL_ENV = "PSYLLM_MODEL"
STORE_URL_ENV = "PSYLLM_STORE_URL"
STORE_TEXT_ENV = "PSYLLM_STORE_TEXT"
REGION_ENV = "PSYLLM_REGION"
SCREENER_DIR_ENV = "PSYLLM_SCREENER_DIR"
API_KEY_ENV = "PSYLLM_API_KEY"  # the case queue's key: only ever from the environment, never a file
CONSOLE_KEY_ENV = "PSYLLM_CONSOLE_KEY"  # encrypts stored message text, signs console sessions: environment only
# Tracking and orchestration.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # an MLflow server instead of MLFLOW_LOCAL_STORE
EXPERIMENT_ENV = "PSYLLM_EXPERIMENT"  # the MLflow experiment (default: psyllm)
PARENT_RUN_ENV = "PSYLLM_PARENT_RUN_ID"  # set by the flow, so each step's MLflow run nests under its run
PROJECT_DIR_ENV = "PSYLLM_PROJECT_DIR"  # where a work pool's workers find their checkout of this project
DEBUG_ENV = "PSYLLM_DEBUG"  # show the traceback of an unexpected error
