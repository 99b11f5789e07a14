"""The generation-backend protocol for pass@N sampling: N sampled completions per chat prompt.

Backends (``hf``, ``vllm``, ``openai`` in ``passn/backends/``, or a plugin's) are registered through the
``register_generation_backends`` hook as ``register(name, factory)``; ``factory(**options)`` returns an
object with ``sample(conversations, params) -> list[list[Completion]]``: for each conversation, in order,
exactly ``params.n`` completions. A factory may declare ``options_model`` (its options, checked when a config
loads) and ``loads_checkpoint`` (see :mod:`taosr1_plugins.core.options`). Framework-free: the backends import
their frameworks themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.errors import UserError

Messages = Sequence[dict[str, str]]


class GenerationError(UserError, RuntimeError):
    """A backend could not produce samples (missing framework, endpoint down, bad option...)."""


class SamplingParams(BaseModel):
    """What to draw for every prompt of one ``sample`` call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(8, ge=1, description="completions per prompt")
    temperature: float = Field(1.0, ge=0, description="0 is greedy (every completion the same)")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    seed: int | None = Field(None, description="seed for this call; backends derive per-prompt seeds from it")


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" or "length" (or what an endpoint reports)


@runtime_checkable
class GenerationBackend(Protocol):
    def sample(self, conversations: Sequence[Messages], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions for each conversation, in order."""
        ...



def get_generation_backend(name: str, **options: Any) -> GenerationBackend:
    """Instantiate a registered generation backend by name with its options."""
    from taosr1_plugins import plugins

    return plugins.get("generation_backend", name)(**options)


def generation_options(backend: str, batch_size: int, options: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    """What the pass@N stage hands backend ``backend`` besides the model: ``options``, plus ``batch_size`` for a
    backend that takes one (its options model has it, or it declares none; vLLM schedules its own batches and
    refuses the key), plus the run's ``seed`` for a backend whose options model names one: an engine seeded once
    (vLLM on CPU refuses per-request seeds) would otherwise ignore the run's."""
    from taosr1_plugins import plugins
    from taosr1_plugins.core.options import offered, options_model

    factory = plugins.get("generation_backend", backend)
    built = offered(factory, options, batch_size=batch_size)
    model = options_model(factory)
    if seed is not None and model is not None and "seed" in model.model_fields:
        built.setdefault("seed", seed)
    return built


def check_shape(results: list[list[Completion]], prompts: int, n: int, backend: str) -> list[list[Completion]]:
    """A backend that returns the wrong number of completions would silently skew pass rates: refuse it."""
    if len(results) != prompts or any(len(row) != n for row in results):
        counts = [len(row) for row in results]
        raise GenerationError(f"backend {backend!r} returned {counts} completions for {prompts} prompts x n={n}")
    return results
