"""The serving benchmark runs end to end on the smoke model: `psyllm serve` under locust against plain `generate`."""

import json
import sys

import pytest

from tests.pipeline.project import run


def test_the_http_benchmark_reports_each_client_count_against_plain_generate(smoke_project, tmp_path):
    out = tmp_path / "serving.json"
    model, screener = "data/models/finetuned/pretrained", "data/screener"
    args = ("--model", model, "--screener", screener, "--clients", "1", "2", "--seconds", "4",
            "--warmup-seconds", "1", "--repeats", "1", "--max-new-tokens", "8", "--out", str(out))  # fmt: skip
    completed = run(smoke_project, sys.executable, "bench/serving.py", *args, timeout=420)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(out.read_text())
    assert [level["clients"] for level in report["levels"]] == [1, 2]
    for level in report["levels"]:
        assert level["requests"] > 0 and level["failures"] == 0 and level["p50_ms"] <= level["p95_ms"]
    assert 0 < report["new_tokens_per_answer"] <= 8
    most = report["levels"][-1]["requests_per_s"]
    assert report["serving_speedup"] == pytest.approx(most * report["baseline"]["seconds_per_answer"], rel=0.02)
    same_precision = report["same_precision_generate"]["seconds_per_answer"]
    assert report["speedup_over_same_precision_generate"] == pytest.approx(most * same_precision, rel=0.02)
    assert "| 2 |" in completed.stdout
