"""One vLLM engine per process at a time: asked for another model, the open engine is shut down first.

An engine holds its workers and their KV cache until it is shut down: on a GPU a second ``vllm.LLM`` in the same
process cannot get its ``gpu_memory_utilization`` share, and on CPU its workers would compete for the cores. The
deploy stage scores several models in a row and the pass@N stage both samples and estimates one-pass difficulty
with one model; every vLLM path therefore asks for its engine here, so that the same model (with the same engine
arguments) reuses the engine that is open and any other one replaces it.
"""

from __future__ import annotations

import gc
import json
import os
from typing import Any

# Every engine asks for the same logprob settings, so that the scorer (which reads level log-probabilities) and
# the pass@N backend (which does not) share one engine for one model. processed_logprobs: log-probabilities after
# temperature and allowed_token_ids, which is what one-pass difficulty and the allowed_token_ids route read.
LOGPROB_ARGS = {"logprobs_mode": "processed_logprobs", "max_logprobs": 20}
# GiB of KV cache a CPU engine takes when VLLM_CPU_KVCACHE_SPACE is not set (vLLM's default grabs far more
# than a 135M model needs on a shared machine)
CPU_KVCACHE_GIB = "1"
# Cores vLLM's CPU worker leaves to its scheduler process (VLLM_CPU_NUM_OF_RESERVED_CPU): its default, one per
# rank on x86, is half of a 2-core machine. There none is reserved unless the variable says otherwise: scoring
# 192 ESCI pairs with SmolLM2 went 2.70 -> 5.54 pairs/s (HF on both cores: 3.99) and pass@N (64 prompts x 4,
# 48 tokens) 0.72 -> 1.26 prompts/s on a 2-core Intel Xeon.
SMALL_MACHINE_CORES = 2

_open: tuple[str, Any, list] | None = None  # (key, vllm.LLM, the processes it started)


def import_vllm():
    import vllm

    return vllm


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def cpu_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """On CPU: float32 for dtype auto (what the hf backends use on CPU, so both engines agree) and eager mode
    always (vLLM's CPU build has no CUDA graphs, and compiling costs minutes of start-up for a small model)."""
    if arguments.get("dtype", "auto") == "auto":
        arguments = {**arguments, "dtype": "float32"}
    return {**arguments, "enforce_eager": True}


def open_engine(model: str, **arguments: Any) -> Any:
    """The ``vllm.LLM`` for ``model`` with ``arguments``: the one open if it is that one, else a new one, after
    the open one is shut down."""
    global _open
    vllm = import_vllm()
    if on_cpu():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB)
        if (os.cpu_count() or 1) <= SMALL_MACHINE_CORES:
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        arguments = cpu_arguments(arguments)
    arguments = {**LOGPROB_ARGS, **arguments}
    key = json.dumps({"model": model, **arguments}, sort_keys=True, default=str)
    if _open is not None and _open[0] == key:
        return _open[1]
    close_engine()
    before = {p.pid for p in _descendants()}
    llm = vllm.LLM(model=model, **arguments)
    _open = (key, llm, [p for p in _descendants() if p.pid not in before])
    return llm


def _descendants() -> list:
    import psutil  # a dependency of vLLM

    return psutil.Process().children(recursive=True)


def close_engine() -> None:
    """Shut the open engine down: its engine-core process and workers exit before this returns."""
    global _open
    if _open is None:
        return
    import psutil

    _, llm, processes = _open
    _open = None
    llm.llm_engine.engine_core.shutdown()
    del llm
    gc.collect()
    # vLLM waits for its engine core; a worker left behind is ended here, so none outlives its engine
    _, alive = psutil.wait_procs(processes, timeout=5)
    for process in alive:
        process.kill()
