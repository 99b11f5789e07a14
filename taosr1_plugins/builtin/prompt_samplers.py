"""Built-in prompt samplers: difficulty-based selection for GRPO, and the uniform baseline."""

from taosr1_plugins.hookspecs import hookimpl


@hookimpl
def register_prompt_samplers(register):
    from taosr1_plugins.grpo.difficulty_mix import DifficultySampler, uniform_sampler

    register("difficulty", DifficultySampler)
    register("uniform", uniform_sampler)
