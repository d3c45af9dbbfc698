"""What running independent stages side by side buys: a whole profile's wall time by step, one stage at a time vs two.

The baseline is `psyllm run --profile PROFILE` with one stage at a time and a torch thread per core;
the candidate is the same run with `--stage-workers 2`, where the flow gives each stage half the
cores (the screener's stages beside the model's). Each runs in its own fresh clone of this
checkout's HEAD, with the shared public data beside it, one after the other on this machine. Each
run's stage times are the flow's own `stage_seconds.*` metrics from its MLflow parent run. Results
and their ratio go to bench/results/pipeline.json.

    .venv/bin/python bench/pipeline.py [--profile smoke] [--workdir /tmp/psyllm-bench]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from components.hardware import machine
from flows.training import stage_threads

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def fresh_clone(destination: Path) -> Path:
    if destination.parent.exists():
        shutil.rmtree(destination.parent)
    destination.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(destination)], check=True)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (destination.parent / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    return destination


def stage_seconds(project: Path) -> dict[str, float]:
    """The flow run's `stage_seconds.*` metrics, from its MLflow parent run in the project's store."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlruns/mlflow.db'}")
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    (parent,) = client.search_runs(experiments, "metrics.`stage_seconds.config` >= 0")
    return {
        key.removeprefix("stage_seconds."): value
        for key, value in parent.data.metrics.items()
        if key.startswith("stage_seconds.")
    }


@dataclass(frozen=True)
class Run:
    stage_workers: int
    threads_per_stage: int
    wall_s: float
    stages_s: dict[str, float]


def timed_run(project: Path, profile: str, workers: int) -> Run:
    threads = stage_threads(workers) or int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    environment = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    command = [str(BIN / "psyllm"), "run", "--profile", profile, "--stage-workers", str(workers)]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed in {project}:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}")
    return Run(workers, threads, round(wall, 1), stage_seconds(project))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/psyllm-bench"))
    args = parser.parse_args()
    sequential, side_by_side = (
        timed_run(fresh_clone(args.workdir / f"workers-{workers}" / "project"), args.profile, workers)
        for workers in (1, 2)
    )
    result = {
        "benchmark": "pipeline",
        "profile": args.profile,
        "machine": machine(),
        "runs": [asdict(sequential), asdict(side_by_side)],
        "speedup": round(sequential.wall_s / side_by_side.wall_s, 2),
    }
    out = ROOT / "bench/results/pipeline.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'stage':<20}{'one at a time (s)':>20}{'two at a time (s)':>20}")
    for stage, seconds in sequential.stages_s.items():
        print(f"{stage:<20}{seconds:>20.1f}{side_by_side.stages_s.get(stage, 0.0):>20.1f}")
    print(f"{'whole run (wall)':<20}{sequential.wall_s:>20.1f}{side_by_side.wall_s:>20.1f}")
    print(f"speedup with two stages at a time: {result['speedup']}x -> {out}")


if __name__ == "__main__":
    main()
