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
    names the scheme its raw labels belong to. A ``data.importers.TableImporter`` (a table format and a column
    map, as every built-in is) also takes ``ImportOptions``: the command line's --map, --labels, --delimiter.
    """


# A teacher, generation backend or deployment adapter factory may declare the options it takes as an attribute
# ``options_model`` (a pydantic model, extra="forbid", in a module that imports no ML framework): the run config
# and the CLI check options against it before any model loads. ``loads_checkpoint = True`` says the factory loads
# its model as a checkpoint (a folder or Hub id), which the CLI then checks. See taosr1_plugins/core/options.py.


@hookspec
def register_teachers(register):
    """Register CoT teachers: ``register(name, factory)``; ``factory(**options)`` returns a teacher
    with ``generate(requests: list[TeacherRequest]) -> list[str]``; ``factory.options_model`` (optional)
    declares the options."""


@hookspec
def register_generation_backends(register):
    """Register response samplers for pass@N: ``register(name, factory)`` (e.g. hf, vllm, openai);
    ``factory(model=..., **options)`` returns an object with ``sample(conversations, params)``;
    ``factory.options_model`` (optional, with the ``model`` field) declares the options and
    ``factory.loads_checkpoint`` whether ``model`` is a checkpoint. The stage adds its ``batch_size`` when the
    options model has one (or there is none)."""


@hookspec
def register_reward_functions(register):
    """Register GRPO reward functions: ``register(name, factory)``.

    ``factory(settings)`` gets the run's :class:`taosr1_plugins.grpo.reward.RewardSettings` (the GRPO
    settings' ``reward:`` section; ``reward.function`` names the factory to use, default ``relevance``;
    ``reward.options`` holds the factory's own parameters, validated first by its ``options_model`` when it
    declares one) and returns a :class:`taosr1_plugins.grpo.reward.Reward`: ``reward.score(response, label)`` ->
    ``RewardResult(reward, correct, format_ok, label, gold)`` and ``reward(response, label)`` -> the shaped
    reward as a float. ``label`` is what the adapters pass: a level key or ``{"gold": ..., "scheme": ...}``.
    The TRL, OpenRLHF and verl adapters all score with it; it runs inside training loops, so it should
    return finite numbers for any response and label rather than raise.
    """


@hookspec
def register_prompt_samplers(register):
    """Register prompt samplers: ``register(name, sampler_factory)`` (difficulty-based dynamic sampling)."""


@hookspec
def register_training_backends(register):
    """Register training frameworks: ``register(name, factory)``; ``factory()`` returns a
    :class:`taosr1_plugins.training.backend.TrainingBackend` (``stages``, ``options_model``, ``check(job)``,
    ``train(job)``), chosen by ``framework:`` in the run config's ``sft``, ``dpo`` and ``grpo`` sections."""


@hookspec
def register_deployment_adapters(register):
    """Register deployment adapters: ``register(name, adapter_factory)`` (label probabilities, CumPT);
    ``adapter_factory(model, scheme, **options)``; ``adapter_factory.options_model`` (optional) declares the
    options and ``adapter_factory.loads_checkpoint`` whether ``model`` is a checkpoint. The scoring job adds
    ``device``, ``batch_size`` and ``max_explain_tokens`` where the options model has them (or there is none)."""
