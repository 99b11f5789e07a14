"""Built-in deployment adapters: label-probability scorers for post-CoT serving (``hf``, ``vllm``).

Implemented in deploy/scorers/; each factory declares its ``options_model`` and imports its framework only when
called, so listing plugins or checking options never imports torch or vLLM.
"""

from taosr1_plugins.hookspecs import hookimpl


@hookimpl
def register_deployment_adapters(register):
    from taosr1_plugins.deploy.scorers.hf import create_hf_scorer
    from taosr1_plugins.deploy.scorers.vllm import create_vllm_scorer

    register("hf", create_hf_scorer)
    register("vllm", create_vllm_scorer)
