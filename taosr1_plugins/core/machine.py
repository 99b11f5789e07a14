"""The machine a run ran on, for its manifest and report: figures on CPUs are only comparable with the CPU named."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """Where the run ran: OS, CPU model and count, and whether the CPU does bf16 natively (AVX512-BF16/AMX),
    read from /proc/cpuinfo (no torch import: the manifest is written before any stage)."""
    import os

    info: dict[str, Any] = {"system": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
                            "cpu": platform.processor() or None, "cpu_count": os.cpu_count(),
                            "avx512_bf16": None, "amx_bf16": None}  # None: not known (no x86 flags to read)
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    fields = dict(line.split(":", 1) for line in cpuinfo.split("\n\n")[0].splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    info["cpu"] = fields.get("model name") or info["cpu"]
    flags = set(fields.get("flags", "").split())
    if flags:
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["amx_bf16"] = "amx_bf16" in flags
    return info
