"""Built-in generation backends for pass@N sampling: `hf` (transformers), `vllm` (GPU), `openai` (any endpoint).

Implemented in passn/backends/; each class declares its ``options_model`` and imports its framework only when
created, so listing plugins or checking options never imports torch, vllm or openai.
"""

from taosr1_plugins.hookspecs import hookimpl


@hookimpl
def register_generation_backends(register):
    from taosr1_plugins.passn.backends.hf import HFBackend
    from taosr1_plugins.passn.backends.openai import OpenAIBackend
    from taosr1_plugins.passn.backends.vllm import VLLMBackend

    register("hf", HFBackend)
    register("vllm", VLLMBackend)
    register("openai", OpenAIBackend)
