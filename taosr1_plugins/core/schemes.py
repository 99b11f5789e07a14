"""Label schemes: ordered relevance levels with names, definitions and single-token verbalizers.

A scheme is registered by a plugin or read from a YAML file. Records of a YAML scheme carry the file's path
(``Record.scheme_file``), so that every later command reads the scheme the data was made with; ``get_scheme``
is the one lookup for all three (a name, a file, a name with its file).
"""

from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from taosr1_plugins.errors import DataError, UnknownPluginError, UserError, data_error
from taosr1_plugins.core import yaml_load

if TYPE_CHECKING:
    from taosr1_plugins.core.records import Record


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, description="the label value stored in records, e.g. '4' or 'E'")
    name: str = Field(min_length=1)
    definition: str = Field(min_length=1, description="used in prompts")
    verbalizer: str | None = Field(None, description="what the model writes as its answer; defaults to key")

    @property
    def token(self) -> str:
        return self.verbalizer or self.key


class RatingBin(BaseModel):
    """Maps a numeric raw rating to a level: the first bucket whose ``max`` is >= the value wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max: float
    key: str


class LabelScheme(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    levels: tuple[Level, ...] = Field(description="most relevant first")
    raw_labels: dict[str, str] = Field(default_factory=dict, description="raw source label -> level key")
    buckets: tuple[RatingBin, ...] = Field(default=(), description="numeric raw rating -> level key, ascending max")
    # not a field: where the definition lives is no part of it (a registered scheme has no file)
    _file: str | None = PrivateAttr(None)

    @property
    def file(self) -> str | None:
        """The YAML file (absolute) this scheme was read from; None for a registered one. What is written
        with the scheme names it (Record.scheme_file), so later commands read the same file."""
        return self._file

    @model_validator(mode="after")
    def _check(self) -> LabelScheme:
        if len(self.levels) < 2:
            raise ValueError("a scheme needs at least two levels")
        for attr in ("key", "token", "name"):
            values = [getattr(level, attr) for level in self.levels]
            if len(set(values)) != len(values):
                raise ValueError(f"level {attr}s must be unique, got {values}")
        keys = set(self.keys)
        for raw, key in self.raw_labels.items():
            if key not in keys:
                raise ValueError(f"raw label {raw!r} maps to unknown level {key!r}")
        for bucket in self.buckets:
            if bucket.key not in keys:
                raise ValueError(f"bucket maps to unknown level {bucket.key!r}")
        if [b.max for b in self.buckets] != sorted(b.max for b in self.buckets):
            raise ValueError("buckets must be sorted by ascending max")
        return self

    @property
    def keys(self) -> list[str]:
        return [level.key for level in self.levels]

    def level(self, key: str) -> Level:
        for level in self.levels:
            if level.key == key:
                return level
        raise KeyError(f"scheme {self.name!r} has no level {key!r} (levels: {', '.join(self.keys)})")

    def rank(self, key: str) -> int:
        """Ordinal position, 0 for the least relevant level."""
        return len(self.levels) - 1 - self.keys.index(key)

    def label_from_answer(self, text: str) -> str | None:
        """The level a model's answer text names (its verbalizer, key or name), or None."""
        text = text.strip()
        for level in self.levels:
            if text == level.token:
                return level.key
        for level in self.levels:
            if text == level.key or text.casefold() == level.name.casefold():
                return level.key
        return None

    def to_key(self, raw: Any) -> str:
        """Map a raw label from a source file to a level key; raises ValueError when it cannot."""
        text = str(raw).strip()
        if text in self.raw_labels:
            return self.raw_labels[text]
        # Sources disagree on case ("Exact" in ESCI files, "exact" in scheme YAML), so raw labels
        # also match case-insensitively; an exact-case entry above still wins.
        folded = {raw_label.casefold(): key for raw_label, key in self.raw_labels.items()}
        if text.casefold() in folded:
            return folded[text.casefold()]
        found = self.label_from_answer(text)
        if found is not None:
            return found
        if self.buckets:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if math.isfinite(value):
                for bucket in self.buckets:
                    if value <= bucket.max + 1e-9:
                        return bucket.key
        raise ValueError(f"{text!r} is not a label of scheme {self.name!r} (levels: {', '.join(self.keys)})")

    def check_tokenizer(self, tokenizer) -> None:
        """Fail loudly unless every verbalizer is one token of ``tokenizer``, alone and after '>'.

        Label probabilities are read from one next-token distribution, so a verbalizer split into
        several tokens would silently score only its first piece.
        """
        problems = []
        for level in self.levels:
            alone = tokenizer.encode(level.token, add_special_tokens=False)
            in_tag = tokenizer.encode(f"<answer>{level.token}</answer>", add_special_tokens=False)
            prefix = tokenizer.encode("<answer>", add_special_tokens=False)
            if len(alone) != 1:
                problems.append(f"{level.token!r} encodes to {len(alone)} tokens {alone}")
            elif in_tag[: len(prefix)] != prefix or in_tag[len(prefix)] != alone[0]:
                problems.append(f"{level.token!r} merges with the '<answer>' tag around it")
        if problems:
            name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
            raise SchemeError(
                f"scheme {self.name!r}: verbalizers must be single tokens of tokenizer {name!r}: "
                + "; ".join(problems)
                + ". Set `verbalizer:` per level to single-token strings."
            )

    def definitions_text(self) -> str:
        return "\n".join(f"- {level.token} ({level.name}): {level.definition}" for level in self.levels)


class SchemeError(UserError, ValueError):
    pass


def is_scheme_file(name_or_path: str | Path) -> bool:
    """A scheme reference that names a YAML file rather than a registered scheme."""
    return str(name_or_path).endswith((".yaml", ".yml")) or Path(name_or_path).is_file()


# Schemes read from files in this process, by path (re-read when the file changes) and by name. The names let
# rows that carry only a scheme's name (score rows, pass@N samples, GRPO labels) resolve in the process that
# read the records they were made from; a registered scheme of the same name still wins for them.
_by_path: dict[str, tuple[tuple[int, int], LabelScheme]] = {}
_by_name: dict[str, LabelScheme] = {}


def load_scheme_file(path: str | Path) -> LabelScheme:
    path = Path(path).absolute()
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _by_path.get(str(path))
        if cached and cached[0] == stamp:
            _by_name[cached[1].name] = cached[1]  # the file read last names the scheme
            return cached[1]
        data = yaml_load.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(str(path), None, None, f"cannot read scheme: {exc}") from exc
    try:
        scheme = LabelScheme.model_validate(data)
    except ValidationError as exc:
        raise data_error(exc, str(path)) from exc
    scheme._file = str(path)
    _by_path[str(path)] = (stamp, scheme)
    _by_name[scheme.name] = scheme
    return scheme


def get_scheme(name_or_path: str, file: str | Path | None = None) -> LabelScheme:
    """The one scheme lookup.

    - a YAML path: the scheme the file defines;
    - a name and ``file`` (a record's ``scheme_file``): the scheme that file defines, which must bear the name;
    - a name: the registered scheme (UnknownPluginError if none), else one of that name read from a file
      earlier in this process.
    """
    if is_scheme_file(name_or_path):
        return load_scheme_file(name_or_path)
    if file is not None:
        try:
            scheme = load_scheme_file(file)
        except DataError as exc:  # the data outlived its scheme file: say where the path came from
            raise SchemeError(f"scheme {name_or_path!r} of these records is read from {exc.file}, which "
                              f"failed: {exc.message}; restore the file (or, where the command takes one, pass --scheme)") from exc
        if scheme.name != name_or_path:
            raise SchemeError(f"{scheme.file} defines scheme {scheme.name!r}, but the records name {name_or_path!r}")
        return scheme
    from taosr1_plugins import plugins

    try:
        return plugins.get("scheme", name_or_path)
    except UnknownPluginError:
        if name_or_path in _by_name:
            return _by_name[name_or_path]
        raise


def scheme_of(record: Record) -> LabelScheme:
    """The scheme of ``record``: its registered name, or the YAML file it was imported with."""
    return get_scheme(record.scheme, record.scheme_file)


def schemes_of(records: Iterable[Record]) -> dict[str, LabelScheme]:
    """Scheme name -> scheme, for every scheme among ``records`` (each looked up once)."""
    found: dict[str, LabelScheme] = {}
    for record in records:
        if record.scheme not in found:
            found[record.scheme] = scheme_of(record)
    return found
