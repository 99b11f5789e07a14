"""The options a plugin's factory takes, declared by the factory itself.

A teacher, generation backend, deployment adapter or reward factory may carry an ``options_model``
attribute: a pydantic model (``extra="forbid"``) of the keyword options it accepts, as an importer carries
``default_scheme``. Whoever hands the factory options checks them here first (the run config when it
loads, the command line before it reads a file), so a typo in a vLLM engine argument stops ``taosr1 run``
before hours of SFT rather than at the stage that creates the backend. A factory without
``options_model`` is checked when it is created, as it always was.

A factory that loads its model as a checkpoint (a local folder or a Hub id, as ``hf`` and ``vllm`` do)
says so with ``loads_checkpoint = True``; the command line then checks the path before it starts, while
a backend that names a served model (``openai``) is left alone.

Pydantic only: an options model lives in a module that imports no ML framework, so checking options
imports neither torch, vLLM nor openai.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from taosr1_plugins.errors import UserError, first_problem


class OptionError(UserError, ValueError):
    """An option a plugin refuses, named: ``<what> option '<option>': <message>``.

    A ValueError too, so a pydantic validator that raises it reports it at its section's field."""

    def __init__(self, what: str, option: str, message: str):
        self.what, self.option, self.message = what, option, message
        super().__init__(f"{what} option {option!r}: {message}")


class NoOptions(BaseModel):
    """The options model of a factory that takes none: any option is refused by name."""

    model_config = ConfigDict(extra="forbid")


# what a stage passes a backend besides its options: the run's own model (a stand-in while a config loads)
RUN_MODEL = {"model": "<the run's model>"}


def options_model(factory: Any) -> type[BaseModel] | None:
    """The options model ``factory`` declares, or None."""
    model = getattr(factory, "options_model", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def loads_checkpoint(factory: Any) -> bool:
    """Whether ``factory`` loads its model as a checkpoint, so the path is worth checking before a run."""
    return bool(getattr(factory, "loads_checkpoint", False))


def takes_option(factory: Any, name: str) -> bool:
    """Whether ``factory`` takes option ``name``: its options model has the field, or, without a model, we
    cannot tell and assume so (as the stages always did)."""
    model = options_model(factory)
    return model is None or name in model.model_fields


def validate_options(
    factory: Any,
    options: Mapping[str, Any],
    *,
    what: str,
    given: Mapping[str, Any] | None = None,
    given_by: str = "the stage",
) -> BaseModel | None:
    """``options`` validated by ``factory``'s options model (None for a factory without one).

    ``given`` is what the caller passes the factory besides ``options`` (e.g. the run's own model): a key of it
    in ``options`` is refused, and its values stand in for required fields while validating. Raises
    :class:`OptionError` naming the first bad option.
    """
    given = dict(given or {})
    for key in options:
        if key in given:
            raise OptionError(what, key, f"{given_by} passes this itself; remove it from the options")
    model = options_model(factory)
    if model is None:
        return None
    data = {key: value for key, value in given.items() if key in model.model_fields}
    data.update(options)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where, message = first_problem(exc, whole="options")
        raise OptionError(what, where, message) from None


def check_options(
    kind: str, name: str, options: Mapping[str, Any], *, if_registered: bool = False, **kwargs: Any
) -> BaseModel | None:
    """:func:`validate_options` for the plugin of ``kind`` (a key of ``plugins.KINDS``) registered as
    ``name``. An unknown name raises :class:`~taosr1_plugins.errors.UnknownPluginError`, or with
    ``if_registered`` passes (for a caller whose unknown names another check reports)."""
    from taosr1_plugins import plugins

    found = plugins.registered(kind)
    if name not in found:
        if if_registered:
            return None
        return plugins.get(kind, name)  # raises, listing the registered names
    return validate_options(found[name], options, what=f"{plugins.KINDS[kind].one} {name!r}", **kwargs)


def offered(factory: Any, options: Mapping[str, Any], **defaults: Any) -> dict[str, Any]:
    """``options`` plus each of the caller's ``defaults`` (e.g. the section's batch size) that ``factory``
    takes (:func:`takes_option`): vLLM schedules its own batches and refuses a ``batch_size``."""
    built = dict(options)
    for key, value in defaults.items():
        if takes_option(factory, key):
            built.setdefault(key, value)
    return built
