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


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``key=value`` strings -> dict; each plugin (teacher, backend) validates and converts its own options."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--option")
        options[key.strip()] = value
    return options
