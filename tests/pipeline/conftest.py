"""The session's one pipeline run: a fresh copy of the project taken through the smoke profile."""

import pytest

from tests.pipeline.project import BIN, clone_project, run, set_params


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory):
    """A fresh clone after `psyllm run --profile smoke`. Tests must not modify it."""
    project = clone_project(tmp_path_factory.mktemp("smoke") / "project")
    set_params(project, "smoke")
    completed = run(project, str(BIN / "psyllm"), "run", "--profile", "smoke")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return project
