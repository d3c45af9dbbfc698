"""The training flow: one Prefect task per DVC stage, read from dvc.yaml, then register and promote.

DVC alone decides what is stale: each stage task runs `dvc repro --single-item STAGE` once the
stages it depends on have run, so Prefect's own result cache is off. Independent branches (the
screener beside the model) can run side by side (`stage_workers`): DVC releases its repository
lock while a stage's command runs, and each stage waits for that lock rather than failing on it.
Side by side, each stage gets its share of the cores. One worker is the default: with two on a
2-core CPU the model trains on one core while the screener's stages run (the smoke profile ran 1.34x
faster with two, bench/pipeline.py; the default profile is unmeasured). A stage that fails
transiently (exit code 75: a server or remote out of reach) is retried with backoff; any other
failure fails the flow with the step's own error message. One MLflow parent run per flow run holds
the lineage (git commit, DVC hashes, profile, flow-run id); every step's run nests under it.

Run it with `psyllm run` (Prefect's temporary local API unless `PREFECT_API_URL` is set), on a
schedule with `psyllm schedule`, or from a work pool through the generated prefect.yaml.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.states import State
from prefect.tasks import Task, exponential_backoff

from components import registry, release, tracking
from components.config import Params, load_params, set_profile
from components.errors import TRANSIENT_EXIT_CODE, PsyllmError, is_transient
from components.lineage import data_hashes, git_commit
from components.run_lock import run_lock
from flows.environment import hide_console_tracebacks

FLOW_NAME = "psyllm-training"
STAGE_RETRIES = 2
RETRY_BACKOFF_S = 10.0
DVC = str(Path(sys.executable).parent / "dvc")
_EXIT_CODE = re.compile(r"exited with (-?\d+)")
# DVC's advice after each stage (git add dvc.lock, autostage, dvc push): the flow does those.
_DVC_HINT = re.compile(r"^(To track the changes|To enable auto staging|\s+git add|\s+dvc config|Use `dvc push`)")


class StageFailed(PsyllmError):
    """A pipeline stage failed; the message is the step's own error line(s)."""

    def __init__(self, stage: str, message: str, transient: bool) -> None:
        super().__init__(f"step {stage!r} failed: {message}")
        self.stage = stage
        self.transient = transient

    @classmethod
    def from_output(cls, stage: str, lines: list[str]) -> "StageFailed":
        """Pick the step's error out of DVC's output, and whether a retry may help."""
        codes = [int(match.group(1)) for line in lines if (match := _EXIT_CODE.search(line))]
        start = next((i for i, line in enumerate(lines) if line.startswith(("error:", "unexpected error"))), None)
        if start is not None:
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("ERROR")), len(lines))
            message = "\n".join(lines[start:end]).removeprefix("error: ").strip()
        else:
            message = next((line for line in lines if line.startswith("ERROR")), "see the log above")
        lock_busy = any("Unable to acquire lock" in line for line in lines)
        return cls(stage, message, transient=lock_busy or TRANSIENT_EXIT_CODE in codes)


def stage_graph() -> dict[str, list[str]]:
    """dvc.yaml's stages, every stage after the stages it depends on, each with those stages."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(".") as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return {
            stage.addressing: [upstream.addressing for upstream in graph.successors(stage)]
            for stage in reversed(list(nx.topological_sort(graph)))
        }


def _transient_only(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a stage only when its failure is transient; a user error would fail again."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, StageFailed):
        return error.transient
    return isinstance(error, BaseException) and is_transient(error)


@task(
    name="stage",
    task_run_name="{stage}",
    cache_policy=NO_CACHE,
    retries=STAGE_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=RETRY_BACKOFF_S),
    retry_condition_fn=_transient_only,
)
def run_stage(stage: str, threads: int | None = None) -> str:
    """`dvc repro --single-item STAGE` on `threads` torch threads (None: as inherited).

    Returns "ran" or "up to date".
    """
    logger = get_run_logger()
    environment = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen(
        [DVC, "--wait-for-lock", "repro", "--single-item", stage],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip())
        if lines[-1] and not _DVC_HINT.match(lines[-1]):
            logger.info("%s", lines[-1])
    if process.wait() != 0:
        raise StageFailed.from_output(stage, lines)
    return "up to date" if any("didn't change, skipping" in line for line in lines) else "ran"


def stage_threads(workers: int) -> int | None:
    """Torch threads per stage with `workers` stages at a time: a share of the cores, unless
    OMP_NUM_THREADS is set already (None: one stage at a time, or the caller's own setting).

    Two stages that each use every core stall each other at OpenMP's barriers.
    """
    if workers == 1 or "OMP_NUM_THREADS" in os.environ:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def run_stages(graph: dict[str, list[str]], workers: int) -> tuple[dict[str, str], dict[str, float]]:
    """Run each stage once the stages it depends on have run, at most `workers` at a time.

    Returns each stage's outcome and wall seconds, in the graph's order. After a failure no
    stage starts; those running finish (each leaves DVC's records consistent), then the first
    failure is raised.
    """
    threads = stage_threads(workers)
    waiting = list(graph)
    running: dict[PrefectFuture[str], tuple[str, float]] = {}
    outcomes: dict[str, str] = {}
    seconds: dict[str, float] = {}
    failure: Exception | None = None
    while running or (failure is None and waiting):
        if failure is None:
            ready = [stage for stage in waiting if all(upstream in outcomes for upstream in graph[stage])]
            for stage in ready[: workers - len(running)]:
                waiting.remove(stage)
                running[run_stage.submit(stage, threads)] = (stage, time.monotonic())
        if not running:
            raise PsyllmError(f"stages {', '.join(waiting)} depend on stages that are not in the graph")
        finished = next(as_completed(list(running)))
        stage, started = running.pop(finished)
        try:
            outcomes[stage] = finished.result()
        except Exception as error:  # re-raised once the running stages finish
            failure = failure or error
        seconds[stage] = round(time.monotonic() - started, 1)
    if failure is not None:
        raise failure
    return {stage: outcomes[stage] for stage in graph}, {stage: seconds[stage] for stage in graph}


@task(name="register", cache_policy=NO_CACHE)
def register(params: Params, lineage: dict[str, str]) -> release.Registration:
    """Register the evaluated model as the challenger (no new version if it is unchanged)."""
    return release.register(params, lineage)


@task(name="promote", cache_policy=NO_CACHE)
def promote(params: Params) -> release.GateOutcome:
    """Apply the promotion gate to the challenger."""
    return release.gate(params)


@task(
    name="push-data",
    cache_policy=NO_CACHE,
    retries=STAGE_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=RETRY_BACKOFF_S),
)
def push_data() -> str | None:
    """`dvc push` to the default remote, when one is configured; returns the remote's name."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        remote = repo.config["core"].get("remote")
    if not remote:
        return None
    completed = subprocess.run([DVC, "push"], capture_output=True, text=True)
    if completed.returncode != 0:
        raise StageFailed("dvc push", completed.stderr.strip() or completed.stdout.strip(), transient=True)
    return str(remote)


@flow(name=FLOW_NAME, log_prints=True)
def training(profile: str | None = None, wait_for_lock_s: float = 0.0, stage_workers: int = 1) -> dict[str, Any]:
    """crawl → prepare → pretrain → finetune → evaluate (and the screener), then register and promote.

    `stage_workers` stages run at a time where the graph allows (the module docstring says when
    more than one pays).
    """
    if stage_workers < 1:
        raise PsyllmError(f"stage_workers must be at least 1, not {stage_workers}")
    hide_console_tracebacks()
    with run_lock(wait_for_lock_s):
        if profile is not None:
            set_profile(profile)
        params = load_params()
        flow_run_id = str(flow_run.get_id() or "")
        tags = {"psyllm.profile": params.profile, release.FLOW_RUN_TAG: flow_run_id}
        with tracking.flow_run(f"flow ({params.profile})", tags) as parent_run:
            stages, stage_seconds = run_stages(stage_graph(), stage_workers)
            tracking.log_run_metrics(parent_run, {f"stage_seconds.{stage}": s for stage, s in stage_seconds.items()})
            _publish_timings(stages, stage_seconds)
            lineage = {"psyllm.git_commit": git_commit(Path.cwd())}
            lineage.update({f"{release.DATA_TAG}{path}": value for path, value in data_hashes().items()})
            tracking.tag_run(parent_run, lineage)
            _publish_reports(params)
            registration = register(params, {release.FLOW_RUN_TAG: flow_run_id, release.PARENT_RUN_TAG: parent_run})
            outcome = promote(params)
            tracking.tag_run(
                parent_run,
                {
                    "psyllm.registered_version": registration.version.number,
                    "psyllm.gate.promote": str(outcome.decision.promote).lower(),
                    "psyllm.gate.reasons": "\n".join(outcome.decision.reasons),
                },
            )
            _publish_decision(outcome)
            remote = push_data()
    return {
        "profile": params.profile,
        "stages": stages,
        "stage_seconds": stage_seconds,
        "version": registration.version.number,
        "new_version": registration.created,
        "promoted": outcome.decision.promote,
        "reasons": outcome.decision.reasons,
        "champion": champion.number if (champion := registry.by_alias(registry.CHAMPION)) else None,
        "pushed_to": remote,
        "mlflow_run": parent_run,
    }


def _publish_reports(params: Params) -> None:
    """The crawl report and the evaluation report, as Prefect artifacts of this run."""
    from components.crawl import REPORT_FILE as CRAWL_REPORT
    from components.modelling.evaluate import REPORT_FILE as EVALUATION_REPORT

    crawl_report = (params.paths.crawl / CRAWL_REPORT).read_text(encoding="utf-8")
    create_markdown_artifact(
        key="crawl-report", markdown=f"# Crawl report\n\n```json\n{crawl_report}\n```", description="crawl"
    )
    evaluation = (params.paths.model_eval / EVALUATION_REPORT).read_text(encoding="utf-8")
    create_markdown_artifact(key="evaluation-report", markdown=evaluation, description="evaluate")


def _publish_timings(stages: dict[str, str], stage_seconds: dict[str, float]) -> None:
    """Each stage's wall time (a stage DVC found up to date takes seconds), as a Prefect artifact."""
    create_table_artifact(
        key="stage-timings",
        table=[{"stage": stage, "outcome": stages[stage], "seconds": stage_seconds[stage]} for stage in stages],
        description="wall time of each stage in this run",
    )


def _publish_decision(outcome: release.GateOutcome) -> None:
    """The metrics table (base, challenger, champion) and the gate's decision with its reasons."""
    create_table_artifact(
        key="model-metrics",
        table=release.metrics_table(outcome.challenger, outcome.champion),
        description="test-split metrics: base model, challenger and the champion it was compared with",
    )
    verdict = "promoted to champion" if outcome.decision.promote else "not promoted"
    reasons = "\n".join(f"- {reason}" for reason in outcome.decision.reasons)
    create_markdown_artifact(
        key="promotion-decision",
        markdown=f"# Version {outcome.challenger.number}: {verdict}\n\n{reasons}\n",
        description="promotion gate",
    )
