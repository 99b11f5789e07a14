"""Label schemes: ordered relevance levels with names, definitions and single-token verbalizers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taosr1_plugins.errors import DataError, UserError, data_error


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


def load_scheme_file(path: str | Path) -> LabelScheme:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(str(path), None, None, f"cannot read scheme: {exc}") from exc
    try:
        return LabelScheme.model_validate(data)
    except ValidationError as exc:
        raise data_error(exc, str(path)) from exc


def get_scheme(name_or_path: str) -> LabelScheme:
    """A registered scheme by name (UnknownPluginError if none), or one loaded from a YAML file."""
    if name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).is_file():
        return load_scheme_file(name_or_path)
    from taosr1_plugins import plugins

    return plugins.get("scheme", name_or_path)
