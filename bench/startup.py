"""Start-up: seconds from `psyllm serve` to a ready service, against loading the same answerer in-process.

After a crash or a deploy, people wait for the service to be ready again (crisis replies
included). The candidate is the real `psyllm serve` on loopback: the CLI resolves what to serve
and hands over to BentoML, whose process manager starts the worker that loads the model, the
screener and the store; it is timed until `/readyz` answers 200. The baseline is the part no
server can skip: a fresh Python process that imports the service's runtime and loads the same
answerer (`runtime.load_answerer`) and exits. `startup_overhead` = serve seconds / baseline
seconds (1.0 would mean serving adds nothing). Runs alternate, and the medians are reported.
Results go to bench/results/startup.json.

    .venv/bin/python bench/startup.py --model data/models/finetuned/pretrained --screener data/screener
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from served import ROOT, serve_environment, start_serve

from components.hardware import machine

LOAD_IN_PROCESS = """
import sys
from pathlib import Path
from components.serving.runtime import load_answerer
from components.serving.settings import serve_config
from components.serving.store import Store
model, screener, store_url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
config = serve_config(Path.cwd())
load_answerer(model, screener, config, Store(store_url, config.store_text)).close()
"""


def baseline_seconds(model: Path, screener: Path) -> float:
    """A fresh process that loads the answerer (model, screener, store) and exits."""
    with tempfile.TemporaryDirectory(prefix="psyllm-startup-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", LOAD_IN_PROCESS, str(model.resolve()), str(screener.resolve()),
             f"sqlite:///{folder / 'store.sqlite'}"],
            cwd=ROOT, env=serve_environment(folder, screener), check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - started


def serve_seconds(model: Path, screener: Path) -> float:
    """`psyllm serve` until /readyz answers 200; the server is killed after."""
    started = time.perf_counter()
    server, _ = start_serve(model, screener, "psyllm-startup-")
    seconds = time.perf_counter() - started
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--screener", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/startup.json")
    args = parser.parse_args()

    baseline, serve = [], []
    for _ in range(args.repeats):
        baseline.append(baseline_seconds(args.model, args.screener))
        serve.append(serve_seconds(args.model, args.screener))
    result = {
        "machine": machine(),
        "model": str(args.model),
        "repeats": args.repeats,
        "baseline_load_in_process_s": [round(seconds, 2) for seconds in baseline],
        "serve_until_ready_s": [round(seconds, 2) for seconds in serve],
        "baseline_median_s": round(statistics.median(baseline), 2),
        "serve_median_s": round(statistics.median(serve), 2),
        "startup_overhead": round(statistics.median(serve) / statistics.median(baseline), 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
