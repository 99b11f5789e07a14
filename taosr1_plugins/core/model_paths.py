"""Telling a user early, in one line, that a model path is not a loadable checkpoint.

transformers reports a missing or broken checkpoint as whatever fails first (often a tokenizer class
asking for `sentencepiece`), after the command has started writing. These checks are cheap: a few
`stat` calls, config.json, and the safetensors headers, never the weights themselves.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from taosr1_plugins.errors import DataError

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def looks_local(name: str) -> bool:
    """A path, not a Hub id 'org/name': absolute, explicitly relative, or with an existing first folder."""
    if name.startswith(("/", "./", "../", "~")) or name in (".", ".."):
        return True
    parts = Path(name).parts
    return len(parts) > 2 or (len(parts) > 1 and Path(parts[0]).is_dir())


def locate_checkpoint(model: str | Path, *, tokenizer: bool = True) -> str:
    """What to load for ``model``, a checkpoint folder or a Hub id, checked: the folder, or for a Hub id the id
    itself or its cached snapshot (core.hub). Raises DataError unless ``model`` is a folder with a config,
    complete weights and (with ``tokenizer``) tokenizer files, or a Hub id that is cached or on the Hub.

    Built-in model names are core.models.resolve_model's, which calls this for everything else."""
    name = str(model)
    path = Path(name).expanduser()
    if path.exists():
        check_model_dir(path, name, tokenizer=tokenizer)
        return str(path)
    if looks_local(name) or isinstance(model, Path):
        raise DataError(name, None, None, "no such model directory")
    from taosr1_plugins.core.hub import locate_hub_model

    found = locate_hub_model(name)
    if found != name:  # a cached snapshot: it may hold the config only, so it is checked like any folder
        check_model_dir(Path(found), name, tokenizer=tokenizer)
    return found


def check_model_path(model: str | Path, *, tokenizer: bool = True) -> None:
    """Raise DataError unless ``model`` is a loadable checkpoint folder or Hub id (see locate_checkpoint)."""
    locate_checkpoint(model, tokenizer=tokenizer)


def check_model_dir(path: Path, name: str, *, tokenizer: bool = True) -> None:
    """Raise DataError, naming the model as ``name``, unless ``path`` is a complete checkpoint folder."""
    if not path.is_dir():
        raise DataError(name, None, None, "is a file, not a model directory (config.json and weights)")
    config = path / "config.json"
    if not config.is_file():
        raise DataError(name, None, None, "no config.json: not a Hugging Face model directory")
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(str(config), None, None, f"not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or ("model_type" not in parsed and "architectures" not in parsed):
        raise DataError(str(config), None, None, "names neither model_type nor architectures")
    weights = sorted({f for pattern in WEIGHT_PATTERNS for f in path.glob(pattern) if f.is_file()})
    if not weights:
        raise DataError(name, None, None, "no weights (*.safetensors or pytorch_model*.bin)")
    for file in weights:
        if file.suffix == ".safetensors":
            _check_safetensors(file)
        elif file.stat().st_size == 0:
            raise DataError(str(file), None, None, "empty weights file")
    if tokenizer and not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise DataError(name, None, None, f"no tokenizer files ({', '.join(TOKENIZER_FILES)})")


def _check_safetensors(file: Path) -> None:
    """The header must parse and every tensor must end inside the file (a cut copy does not)."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(fh.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError):
        raise DataError(str(file), None, None, "not a readable safetensors file (truncated or damaged)") from None
    if 8 + header_len + end > size:
        raise DataError(str(file), None, None, f"truncated: {size} bytes, its header needs {8 + header_len + end}")
