"""Options of the main job's generation and scoring backends, built from the config and checked when it loads.

A typo in a vLLM engine argument should stop ``taosr1 run`` before hours of SFT, not at the pass@N
stage, so the built-in backends' options are validated against their option models (pydantic for
generation, the factory's keyword arguments for scoring) without importing torch or vLLM. Plugin
backends are checked when they are created, as before.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from pydantic import BaseModel, ValidationError

from taosr1_plugins.errors import first_problem

# generation backend -> its options model; imported on use (pydantic only, no torch or vllm)
GENERATION_OPTIONS = {
    "hf": "taosr1_plugins.builtin.hf_backend:HFBackendOptions",
    "vllm": "taosr1_plugins.builtin.vllm_backend:VLLMBackendOptions",
    "openai": "taosr1_plugins.builtin.openai_backend:OpenAIBackendOptions",
}
# scoring backend -> its factory, whose keyword arguments are the options
SCORING_FACTORIES = {
    "hf": "taosr1_plugins.deploy.scorers.hf:create_hf_scorer",
    "vllm": "taosr1_plugins.deploy.scorers.vllm:create_vllm_scorer",
}
# the stage passes these itself: the model is the run's, the batch size the section's own key
RESERVED = ("model",)


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def generation_options(backend: str, batch_size: int, options: dict[str, Any]) -> dict[str, Any]:
    """What the pass@N stage hands its backend besides the model: ``options``, plus ``batch_size`` for a
    backend whose options have one (hf). vLLM schedules its own batches and refuses the key."""
    built = dict(options)
    model = _options_model(backend)
    if model is None or "batch_size" in model.model_fields:
        built.setdefault("batch_size", batch_size)
    return built


def _options_model(backend: str) -> type[BaseModel] | None:
    ref = GENERATION_OPTIONS.get(backend)
    return _load(ref) if ref else None


def check_generation_options(backend: str, options: dict[str, Any]) -> None:
    """Raise ValueError naming the option when a built-in backend would refuse ``options``."""
    _refuse_reserved(options)
    model = _options_model(backend)
    if model is None:
        return
    try:
        model.model_validate({"model": "<the run's model>", **options})
    except ValidationError as exc:
        field, message = first_problem(exc)
        raise ValueError(f"{backend} backend option {field!r}: {message}") from None


def check_scoring_options(backend: str, options: dict[str, Any]) -> None:
    _refuse_reserved(options)
    ref = SCORING_FACTORIES.get(backend)
    if ref is None:
        return
    accepted = {
        name for name, p in inspect.signature(_load(ref)).parameters.items()
        if p.kind is p.KEYWORD_ONLY
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"{backend} scoring backend has no options {unknown}; it accepts {sorted(accepted)}")


def _refuse_reserved(options: dict[str, Any]) -> None:
    reserved = [key for key in RESERVED if key in options]
    if reserved:
        raise ValueError(f"options may not set {reserved}: the stage passes the run's own model")
