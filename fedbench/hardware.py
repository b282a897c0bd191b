"""What this machine's processors can do, for the settings that depend on it (``train.precision: auto``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 instructions (AVX512-BF16 or AMX-BF16; read from /proc/cpuinfo,
    so False where there is none). Without them torch emulates bf16, which is slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@cache
def cpu_numerics() -> str:
    """The instruction set torch's CPU kernels use here, e.g. ``AVX2`` or ``AVX512+bf16`` (``+bf16``:
    native bf16). Kernels of different widths round differently, so two CPUs give bit-identical runs
    only where this (and the precision) is the same; stamped on every record."""
    import torch

    return torch.backends.cpu.get_cpu_capability() + ("+bf16" if cpu_has_bf16() else "")


def numerics_mismatch(precision: str, made_on: str | None) -> str | None:
    """Why a CPU run made at ``precision`` on a CPU of ``made_on`` (:func:`cpu_numerics`; ``None`` for
    records from before it was stamped) cannot repeat bit for bit here, or ``None`` when it can."""
    here = cpu_numerics()
    if made_on is not None and made_on != here:
        return f"it was made on a CPU with {made_on} kernels, this one has {here}"
    if made_on is None and precision == "bf16-mixed" and not cpu_has_bf16():
        return (
            "it was made in bf16-mixed on a CPU with native bf16, and this CPU emulates bf16 "
            "(other roundings, and many times slower)"
        )
    return None


def concrete_precision(precision: str, accelerator: str) -> str:
    """``auto``: bf16-mixed where the device that trains has native bf16 (a CPU with AVX512-BF16/AMX,
    a GPU torch calls bf16-capable), else 32-true; any other precision as given. A run's identity
    and record hold the concrete precision, so runs on machines that differ here never mix."""
    if precision != "auto":
        return precision
    import torch

    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    native = torch.cuda.is_bf16_supported() if on_gpu else cpu_has_bf16()
    return "bf16-mixed" if native else "32-true"


def peak_rss_bytes() -> int:
    """This process's peak resident size since its exec (the kernel's VmHWM; ru_maxrss where /proc
    is missing, which a child inherits from its parent, so it can over-state)."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int:
    """This process's resident size now (VmRSS), 0 where /proc is missing."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration):
        return 0
