"""Which number format the hardware computes fast, so inference uses bf16 only where it pays.

On a CPU with bf16 units (AMX or AVX-512 BF16) or a CUDA GPU that supports it, bf16 inference
runs 2-3x faster than fp32; elsewhere (an AVX2-only CPU, say) torch emulates bf16, many times
slower than fp32. Training holds its frozen weights in the same dtype
(`components.modelling.adapters.frozen_dtype`); what it updates stays fp32.
"""

import functools
import os
import platform
from pathlib import Path

import torch


@functools.cache
def bf16_units() -> tuple[str, ...]:
    """The bf16 units this CPU has: "AMX", "AVX-512 BF16", both or none."""
    found = (("AMX", torch.cpu._is_amx_tile_supported()), ("AVX-512 BF16", torch.cpu._is_avx512_bf16_supported()))
    return tuple(name for name, present in found if present)


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX-512 BF16)."""
    return bool(bf16_units())


def inference_dtype(device: torch.device) -> torch.dtype:
    """bf16 where `device` computes it in hardware, else fp32: what evaluation and serving decode in.

    Both use it, so a served model answers in the precision it was evaluated in. On the default
    champion (2-core EPYC with AVX-512 BF16, 20 benchmark questions per language) bf16 moved
    reference perplexity by +0.14 % (en) and +0.05 % (zh) against fp32, scored reference answers
    2.8x as fast and generated answers 3.4x as fast.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if device.type == "cpu" and native_bf16() else torch.float32


def machine() -> dict[str, object]:
    """What a benchmark ran on: the CPU's model name, its cores, and its bf16 units if any.

    Two CPUs both called x86_64 can differ several times in bf16 speed (AMX against AVX-512 BF16
    against none), so a timing is only comparable with one from the same model of CPU.
    """
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        cpu = next((line.partition(":")[2].strip() for line in lines if line.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "bf16_units": list(bf16_units()),
        "torch_threads": torch.get_num_threads(),
    }
