"""The GPU benchmarks run their own code paths on a CPU with a tiny config, and decline the full run without a GPU."""

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import PROJECT_ROOT


def bench(script, *args):
    return subprocess.run(
        [sys.executable, f"bench/{script}", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("script", ["gpu_train.py", "gpu_serve.py"])
@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the full benchmark would run")
def test_without_a_gpu_the_full_benchmark_says_so_and_exits_0(script, tmp_path):
    completed = bench(script, "--out", str(tmp_path / "out.json"))
    assert completed.returncode == 0, completed.stderr
    assert "no GPU here" in completed.stdout and not (tmp_path / "out.json").exists()


def test_the_decoding_benchmark_decodes_every_row_to_its_length_through_the_projects_loop(tmp_path):
    out = tmp_path / "gpu_serve.json"
    args = ("--tiny", "--prompt", "12", "--new-tokens", "6", "--batches", "1", "3", "--out", str(out))
    completed = bench("gpu_serve.py", *args)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(out.read_text())
    assert report["tiny"] and [result["batch"] for result in report["results"]] == [1, 3]
    for result in report["results"]:  # every row ran to its length, in the loop as in `generate`
        assert result["tokens_made"] == dict.fromkeys(["loop", "generate", "joining"], result["batch"] * 6)
        assert min(result["loop_tokens_per_s"], result["generate_tokens_per_s"], result["joining_tokens_per_s"]) > 0
        assert result["ratio"] == pytest.approx(result["loop_tokens_per_s"] / result["generate_tokens_per_s"], rel=0.01)
    assert "    3 " in completed.stdout  # the table's row for batch 3
