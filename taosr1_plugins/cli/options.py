"""CLI options declared by a stage's settings model: its field's default and description are the option's.

A setting lives once, in the stage's pydantic model, which the run config's section and the stage itself
also use; the command line only names the flags. `default=` and `help=` override the model where the command
line must differ (a string form of a tuple, a help line that names other flags).
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel

_UNSET: Any = object()


def field_default(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields[name]
    return info.get_default(call_default_factory=True)


def option(model: type[BaseModel], name: str, *flags: str, default: Any = _UNSET, help: str | None = None,
           **kwargs: Any) -> Any:
    """``typer.Option`` for ``model``'s field ``name`` (flags default to ``--field-name``)."""
    info = model.model_fields[name]
    return typer.Option(
        field_default(model, name) if default is _UNSET else default,
        *(flags or ("--" + name.replace("_", "-"),)),
        help=info.description if help is None else help,
        **kwargs,
    )


def finite(value: float | None) -> float | None:
    """A typer callback: click's FloatRange lets NaN through (every comparison with it is false)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``key=value`` strings -> dict; each plugin (teacher, backend) validates and converts its own options."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--option")
        options[key.strip()] = value
    return options


def import_options(map_text: str | None, labels_text: str | None, delimiter: str | None):
    """The command line's --map, --labels and --delimiter (`data import`, `init`) as the ImportOptions a run
    config's data section holds; a bad one is a usage error (status 2) before any file is opened."""
    from pydantic import ValidationError

    from taosr1_plugins.data.columns import ImportOptions, parse_pairs
    from taosr1_plugins.errors import first_problem

    given = {}
    for flag, name, text in (("--map", "map", map_text), ("--labels", "labels", labels_text)):
        if text is not None:
            try:
                given[name] = parse_pairs(text)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=flag) from None
    try:
        return ImportOptions(**given, delimiter=delimiter)
    except ValidationError as exc:
        field, message = first_problem(exc)
        raise typer.BadParameter(message.removeprefix("Value error, "), param_hint="--" + field.split(".")[0]) from None
