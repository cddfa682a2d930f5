"""Where training runs: device, precision, threads and seeding."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

COMPILE_BACKEND = "inductor"  # tests swap in "eager": the same wiring without minutes of code generation


@lru_cache(maxsize=1)
def cpuinfo_text() -> str:
    """/proc/cpuinfo, or "" where there is none (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def bf16_unit(cpuinfo: str) -> str | None:
    """The fastest native bf16 unit that ``cpuinfo``'s flags name ("AMX" or "AVX512-BF16"), or None."""
    return "AMX" if "amx_bf16" in cpuinfo else "AVX512-BF16" if "avx512_bf16" in cpuinfo else None


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX), where bf16 pays off."""
    return bf16_unit(cpuinfo_text()) is not None


def cpu_description(cpuinfo: str | None = None) -> str:
    """The CPU's model name, family and model numbers, core count and fastest bf16 unit, e.g.
    "AMD EPYC (family 26, model 2), 2 cores, AVX512-BF16", from ``cpuinfo`` (the text of
    /proc/cpuinfo, read when not given): benchmark results say which machine measured them. A
    VM may name its CPU only "AMD EPYC", and EPYCs of different generations, twice as fast as
    each other, then read the same without the numbers."""
    cpuinfo = cpuinfo_text() if cpuinfo is None else cpuinfo
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return f"{name}, {os.cpu_count()} cores, {bf16_unit(cpuinfo) or 'no fast bf16'}"


def busy_cores(interval: float = 0.1) -> float | None:
    """How many cores the machine kept busy over ``interval`` seconds while this process slept
    (Linux's /proc/stat: all but idle and I/O wait); None where that cannot be read."""
    def busy_and_total() -> tuple[int, int]:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
        total = user + nice + system + idle + iowait + irq + softirq + steal
        return total - idle - iowait, total

    try:
        busy, total = busy_and_total()
        time.sleep(interval)
        busy_after, total_after = busy_and_total()
    except (OSError, ValueError):
        return None
    if total_after <= total:
        return None
    return (busy_after - busy) / (total_after - total) * (os.cpu_count() or 1)


def contention_note(threads: int, busy: float | None) -> str | None:
    """A note for a run starting while other programs keep cores busy; None when none do."""
    if threads < 2 or busy is None or busy < 0.75 or busy + threads <= (os.cpu_count() or 1):
        return None  # enough idle cores for every thread
    return (f"note: other programs keep about {busy:.1f} of this machine's {os.cpu_count()} cores busy; PyTorch's "
            f"{threads} threads wait for each other at every operation when one of them has to share a core (600 "
            "cgan steps took 314 s instead of 13 beside one busy process), so --set train.threads=1 may train "
            "faster while they run.")


def oversubscription_note(threads: int) -> str | None:
    """A note for train.threads above the machine's core count; None when it fits."""
    cores = os.cpu_count() or 1
    if threads <= cores:
        return None
    return (f"note: train.threads={threads} is more than this machine's {cores} cores, and threads that share a core "
            f"wait for each other at every operation; set train.threads to {cores} or fewer (0 keeps PyTorch's "
            "choice).")


def resolve_precision(choice: str, device: torch.device) -> torch.dtype:
    if choice == "fp32":
        return torch.float32
    if choice == "bf16":
        return torch.bfloat16
    if device.type == "cuda":  # bf16 units from Ampere (compute capability 8) on; earlier GPUs only emulate it
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float32
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward passes; weights and optimizer states stay fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def compiled(module: nn.Module) -> nn.Module:
    """``module`` under ``torch.compile`` (``train.compile``), for the passes that take gradients.

    What fails to compile runs eagerly instead (dynamo's ``suppress_errors``), so a machine
    without a working C++ compiler or Triton trains as it would without the option. Off by
    default: on the development CPU it cost more time compiling than it saved (README, Speed).
    """
    from torch import _dynamo

    _dynamo.config.suppress_errors = True
    return torch.compile(module, backend=COMPILE_BACKEND)
