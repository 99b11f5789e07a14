"""Built-in deployment adapters: label-probability scorers for post-CoT serving (``hf``, ``vllm``).

Factories are imported lazily so listing plugins never imports torch or vLLM.
"""

from taosr1_plugins.hookspecs import hookimpl


def hf(model, scheme, **options):
    from taosr1_plugins.deploy.scorers.hf import create_hf_scorer

    return create_hf_scorer(model, scheme, **options)


def vllm(model, scheme, **options):
    from taosr1_plugins.deploy.scorers.vllm import create_vllm_scorer

    return create_vllm_scorer(model, scheme, **options)


@hookimpl
def register_deployment_adapters(register):
    register("hf", hf)
    register("vllm", vllm)
