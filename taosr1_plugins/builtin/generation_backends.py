"""Built-in generation backends for pass@N sampling: `hf` (transformers), `vllm` (GPU), `openai` (any endpoint).

Factories import their implementation on first use, so listing plugins never imports torch, vllm or openai.
"""

from taosr1_plugins.hookspecs import hookimpl


def hf_backend(**options):
    from taosr1_plugins.builtin.hf_backend import HFBackend

    return HFBackend(**options)


def vllm_backend(**options):
    from taosr1_plugins.builtin.vllm_backend import VLLMBackend

    return VLLMBackend(**options)


def openai_backend(**options):
    from taosr1_plugins.builtin.openai_backend import OpenAIBackend

    return OpenAIBackend(**options)


@hookimpl
def register_generation_backends(register):
    register("hf", hf_backend)
    register("vllm", vllm_backend)
    register("openai", openai_backend)
