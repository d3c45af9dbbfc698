"""Prefect's settings for a project-local, offline run, applied before Prefect is imported.

With no `PREFECT_API_URL`, Prefect starts a temporary local API server on SQLite. It needs
analytics off (otherwise its event writer holds the database: "database is locked"), a
start-up timeout that a loaded 2-core machine meets, and a `PREFECT_HOME` inside the project
so runs of different projects never share a database. Anything already set wins, which is
how a team points runs at its own Prefect server.
"""

import logging
import os
import sys
from pathlib import Path

from components.locations import DEBUG_ENV, PREFECT_LOCAL_HOME

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LOG_PRINTS": "true",
}


def configure_prefect(project_root: Path) -> None:
    """Set Prefect's defaults for this project unless the environment already chose."""
    os.environ.setdefault("PREFECT_HOME", str(project_root.resolve() / PREFECT_LOCAL_HOME))
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)


def prepare_flow_run(project_root: Path) -> None:
    """Before a CLI verb runs a flow: Prefect's project-local settings, and this environment's `psyllm`
    and `dvc` first on PATH, so the flow's stages run the same installation."""
    configure_prefect(project_root)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


class _WithoutTraceback(logging.Formatter):
    """Formats a record as `inner` would, minus its traceback (which other handlers may have cached)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def hide_console_tracebacks() -> None:
    """Keep tracebacks out of the console (users read one clear error line); the API keeps them.

    Prefect logs a failed task's traceback to every handler; here the console handlers drop it,
    while the run's logs on the Prefect API still hold it. PSYLLM_DEBUG=1 keeps it on the console.
    """
    if os.environ.get(DEBUG_ENV):
        return
    from prefect.logging.handlers import APILogHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in logger.handlers:
            console = isinstance(handler, logging.StreamHandler) and not isinstance(handler, APILogHandler)
            if console and not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback(handler.formatter or logging.Formatter()))
