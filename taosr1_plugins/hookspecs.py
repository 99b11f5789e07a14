"""The hooks a taosr1 plugin can implement.

Each hook receives a ``register`` callable, the way simonw/llm's hooks do, so a plugin can provide any
number of things per hook. Built-in plugins implement these hooks exactly like third-party ones.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("taosr1_plugins")
hookimpl = HookimplMarker("taosr1_plugins")


@hookspec
def register_label_schemes(register):
    """Register label schemes: ``register(scheme)`` with a :class:`taosr1_plugins.core.schemes.LabelScheme`."""


@hookspec
def register_importers(register):
    """Register dataset importers: ``register(name, importer)``.

    ``importer(path, scheme) -> Iterator[Record]`` reads a raw judgement file; ``importer.default_scheme``
    names the scheme its raw labels belong to.
    """


@hookspec
def register_teachers(register):
    """Register CoT teachers: ``register(name, factory)``; ``factory(**options)`` returns a teacher
    with ``generate(requests: list[TeacherRequest]) -> list[str]``."""


@hookspec
def register_generation_backends(register):
    """Register response samplers for pass@N: ``register(name, factory)`` (e.g. hf, vllm, openai)."""


@hookspec
def register_reward_functions(register):
    """Register GRPO reward functions: ``register(name, factory)``.

    ``factory(settings)`` gets the run's :class:`taosr1_plugins.grpo.reward.RewardSettings` (the GRPO
    settings' ``reward:`` section; ``reward.function`` names the factory to use, default ``relevance``) and
    returns a :class:`taosr1_plugins.grpo.reward.Reward`: ``reward.score(response, label)`` ->
    ``RewardResult(reward, correct, format_ok, label, gold)`` and ``reward(response, label)`` -> the shaped
    reward as a float. ``label`` is what the adapters pass: a level key or ``{"gold": ..., "scheme": ...}``.
    The TRL, OpenRLHF and verl adapters all score with it; it runs inside training loops, so it should
    return finite numbers for any response and label rather than raise.
    """


@hookspec
def register_prompt_samplers(register):
    """Register prompt samplers: ``register(name, sampler_factory)`` (difficulty-based dynamic sampling)."""


@hookspec
def register_deployment_adapters(register):
    """Register deployment adapters: ``register(name, adapter_factory)`` (label probabilities, CumPT)."""
