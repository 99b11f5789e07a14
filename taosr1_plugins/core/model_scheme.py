"""The label scheme a model was trained for, kept in its folder beside the prompt style (core.prompts).

A model answers with its scheme's level tokens after a prompt that names them, so scoring it with another
scheme gives numbers with no meaning. The training stages write ``taosr1_scheme.json`` into every model folder
they leave; whoever loads the model (the Python API, `taosr1 serve`) takes the scheme from there instead of
asking the user again, and refuses a scheme that contradicts it. Folders trained before the file existed, base
models and Hub ids have none: there the scheme comes from the caller or the cumpt.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taosr1_plugins.errors import DataError, UserError

if TYPE_CHECKING:
    from taosr1_plugins.core.schemes import LabelScheme

SCHEME_FILE = "taosr1_scheme.json"


def write_model_scheme(model_dir: str | Path, scheme: LabelScheme) -> Path:
    """Name the scheme in the model folder, with the YAML file it came from (a user's scheme is no plugin)."""
    from taosr1_plugins.core.jsonl import atomic_write

    path = Path(model_dir) / SCHEME_FILE
    data = {"scheme": scheme.name, **({"scheme_file": str(scheme.file)} if getattr(scheme, "file", None) else {})}
    with atomic_write(path) as fh:
        fh.write(json.dumps(data, indent=2) + "\n")
    return path


def model_scheme(model: str | Path) -> str | None:
    """The scheme named in ``model``'s folder; None when it names none (or ``model`` is not a folder)."""
    return _read(model).get("scheme")


def _read(model: str | Path) -> dict[str, Any]:
    path = Path(model) / SCHEME_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(str(path), None, None, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("scheme"), str) or not data["scheme"]:
        raise DataError(str(path), None, "scheme", "must name the model's label scheme")
    return data


def resolve_model_scheme(model: str | Path, given: str | None = None, cumpt_file: Any = None, *,
                         default: str | None = None) -> LabelScheme:
    """:func:`choose_scheme`'s choice as a scheme: ``given`` (a name or a YAML file), else the one the model folder
    or the cumpt.json names, read from the YAML file they recorded for it where there is one."""
    from taosr1_plugins.core.schemes import get_scheme

    asked = get_scheme(given) if given else None
    name = choose_scheme(model, given=asked.name if asked else None, default=default,
                         cumpt_scheme=cumpt_file.scheme if cumpt_file else None)
    if asked is not None:
        return asked
    folder = _read(model)
    recorded = [(folder.get("scheme"), folder.get("scheme_file"))]
    if cumpt_file is not None:
        recorded.append((cumpt_file.scheme, getattr(cumpt_file, "scheme_file", None)))
    file = next((file for named, file in recorded if named == name and file), None)
    return get_scheme(name, file)


def choose_scheme(model: str | Path, *, given: str | None = None, cumpt_scheme: str | None = None,
                  default: str | None = None, given_by: str = "the scheme asked for") -> str:
    """The scheme to score ``model`` with: the one asked for (``given``, named ``given_by`` in the message), the
    model folder's and the cumpt.json's must agree where each is known; with none known, ``default``, and
    without a default a UserError saying how to name one."""
    known = {given_by: given, f"the model folder ({SCHEME_FILE})": model_scheme(model),
             "the cumpt.json": cumpt_scheme}
    named = {where: scheme for where, scheme in known.items() if scheme}
    if len(set(named.values())) > 1:
        raise UserError("label schemes disagree: " + ", ".join(f"{where} says {s!r}" for where, s in named.items()))
    if named:
        return next(iter(named.values()))
    if default:
        return default
    raise UserError(f"{model} does not say which label scheme it was trained for (no {SCHEME_FILE}): name the "
                    "scheme (e.g. esci) or give the cumpt.json fitted for the model")
