"""Build the session's smoke project: `python -m tests.smoke_build FOLDER`.

Started in the background as a test session begins (tests/conftest.py), so the tests that do not
need a trained project run while it builds. It leaves `FOLDER/built` or, with the run's output,
`FOLDER/failed`; the `smoke_project` fixture waits for one of them.
"""

import sys
from pathlib import Path

from tests.pipeline.project import BIN, clone_project, run, set_params

# On a 2-core AVX2 CPU the run took 13 min one stage at a time, most of it training the screener in fp32.
RUN_TIMEOUT_S = 1500


def build(folder: Path) -> None:
    project = folder / "project"
    try:
        clone_project(project)
        set_params(project, "smoke")
        completed = run(
            project, str(BIN / "psyllm"), "run", "--profile", "smoke", "--stage-workers", "2", timeout=RUN_TIMEOUT_S
        )
    except Exception as error:  # the waiting tests must hear of any failure, not wait for a marker
        (folder / "failed").write_text(f"building the smoke project failed: {error!r}")
        raise
    if completed.returncode != 0:
        (folder / "failed").write_text(completed.stdout + completed.stderr)
    else:
        (folder / "built").touch()


if __name__ == "__main__":
    build(Path(sys.argv[1]))
