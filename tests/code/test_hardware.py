"""Code layer: what a benchmark result says about the machine it ran on."""

import json
import os

from components.hardware import machine, native_bf16


def test_a_benchmark_names_the_cpu_its_cores_and_its_bf16_units():
    described = machine()
    assert json.loads(json.dumps(described)) == described  # written as is into bench/results/*.json
    assert described["cores"] == os.cpu_count() and described["cpu"] not in ("", "x86_64")
    assert set(described["bf16_units"]) <= {"AMX", "AVX-512 BF16"}
    assert bool(described["bf16_units"]) == native_bf16()
