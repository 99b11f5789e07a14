"""Training precision: bf16 autocast where the hardware does bf16 matrix work natively, fp32 elsewhere.

On CPUs with AVX512-BF16 or AMX a bf16-autocast forward+backward of SmolLM2-135M ran ~1.6x faster per
token than fp32; on CPUs without them (AVX2 only) bf16 is emulated and slower, so ``auto`` falls back to
fp32 and says why. The trainers' own ``bf16`` argument (LLaMA-Factory and TRL alike, both HF
``TrainingArguments``) then turns autocast on; weights stay fp32.
"""

from __future__ import annotations

from typing import Literal

Precision = Literal["auto", "bf16", "fp32"]


def bf16_support() -> tuple[bool, str]:
    """(whether bf16 runs natively here, the reason in words)."""
    import torch

    if torch.cuda.is_available():
        supported = torch.cuda.is_bf16_supported()
        return supported, f"GPU {torch.cuda.get_device_name()} {'supports' if supported else 'lacks'} bf16"
    cpu = torch.cpu
    if cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported():
        return True, "CPU has AVX512-BF16/AMX"
    return False, f"CPU lacks AVX512-BF16 and AMX (best ISA: {torch.backends.cpu.get_cpu_capability()}); bf16 would be emulated"


def use_bf16(precision: Precision) -> tuple[bool, str]:
    """Whether to train with bf16 autocast, and a note for the log."""
    if precision == "fp32":
        return False, "fp32 (configured)"
    supported, why = bf16_support()
    if precision == "bf16":
        return True, "bf16 autocast (configured)" + ("" if supported else f"; note: {why}")
    return supported, ("bf16 autocast: " if supported else "fp32: ") + why
