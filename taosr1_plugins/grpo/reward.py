"""The relevance reward for GRPO: a format part plus a correctness part, with optional ordinal partial credit.

Framework-free: the TRL, OpenRLHF and verl adapters under ``integrations/`` only reshape their arguments
and call the ``score`` of the reward that :func:`build_reward` makes: the registered reward function named
by ``RewardSettings.function`` (built-ins: ``relevance``, this module's :class:`RelevanceReward`, and
``correctness``). The reward runs inside training loops (inside Ray actors for
OpenRLHF, which swallows exceptions and then fails later with a misleading error), so scoring never
raises, whatever the response or label, and always returns finite floats.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from taosr1_plugins.core.formats import ResponseFormat, parse_response
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.core import yaml_load


class RewardSettings(BaseModel):
    """Weights of the reward; load from YAML with :func:`load_reward_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    function: str = Field(
        "relevance",
        description="the registered reward function (register_reward_functions) that these settings configure",
    )
    format_weight: float = Field(0.2, description="added when the response is well formed (think + answer, label in the scheme)")
    correct_weight: float = Field(1.0, description="added when the parsed label equals the gold label")
    partial_credit: tuple[float, ...] = Field(
        (),
        description="share of correct_weight for a near miss, by ordinal distance: (0.5,) gives an off-by-one "
        "answer half credit; empty = exact match only",
    )
    correct_requires_format: bool = Field(
        True, description="count a right label as correct only in a well-formed response (as pass@N does)"
    )
    format: ResponseFormat | None = Field(
        ResponseFormat.THINK_ANSWER, description="required order of think/answer; null accepts either"
    )
    scheme: str = Field("esci", description="label scheme used when a label does not name its own")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the reward function's own parameters (a plugin's), checked by its factory's options_model; "
        "the built-ins take none",
    )

    @field_validator("partial_credit")
    @classmethod
    def _credit_is_a_share(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= credit <= 1.0 for credit in value):
            raise ValueError("partial credit values are shares of correct_weight, between 0 and 1")
        return value

    @model_validator(mode="after")
    def _finite_sum(self) -> RewardSettings:
        # each weight finite is not enough: 1e308 + 1e308 is inf, and one inf reward poisons the advantages
        if not math.isfinite(abs(self.format_weight) + abs(self.correct_weight)):
            raise ValueError("format_weight + correct_weight must be a finite number")
        return self


def load_reward_settings(path: str | Path | None = None, **overrides: Any) -> RewardSettings:
    """Settings from a YAML file (a mapping, or a mapping with a top-level ``reward:`` key)."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = yaml_load.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        data = loaded.get("reward", loaded) if isinstance(loaded, dict) else {}
    return RewardSettings.model_validate({**data, **overrides})


class RewardResult(NamedTuple):
    reward: float  # the shaped reward used for advantages
    correct: float  # plain correctness, 0.0 or 1.0 (what dynamic filtering and pass rates use)
    format_ok: bool
    label: str | None  # the level the response names, if any
    gold: str | None  # the gold level, if the label could be resolved


ZERO = RewardResult(0.0, 0.0, False, None, None)


class RewardSetupError(RuntimeError):
    """The reward cannot work in this process (a missing dependency, an unreadable config): raised, never
    scored as zero, because a reward of 0 for everything makes dynamic filtering drop every group."""


@functools.lru_cache(maxsize=64)
def _scheme_named(name: str) -> LabelScheme | None:
    from taosr1_plugins.core.schemes import SchemeError, get_scheme
    from taosr1_plugins.errors import DataError, UnknownPluginError

    try:
        return get_scheme(name)
    except (UnknownPluginError, SchemeError, DataError, OSError):  # a label naming an unknown scheme is content: it scores zero
        return None
    except Exception as exc:  # the plugin machinery itself is broken (e.g. pluggy missing on a worker)
        raise RewardSetupError(f"cannot look up label scheme {name!r}: {type(exc).__name__}: {exc}") from exc


def _gold_key(scheme: LabelScheme, gold: str) -> str | None:
    for level in scheme.levels:  # the common case, without building scheme.keys
        if level.key == gold:
            return gold
    try:  # raw labels ("exact"), level names, numeric ratings
        return scheme.to_key(gold)
    except Exception:
        return None


def resolve_label(label: Any, default_scheme: str) -> tuple[LabelScheme | None, str | None]:
    """(scheme, gold level key) from a label as frameworks pass it: a level key, a raw label, or a dict
    ``{"gold": ..., "scheme": ...}`` (also as a JSON string). Unusable parts come back as None."""
    scheme_ref: Any = default_scheme
    gold: Any = label
    if isinstance(label, str) and label.startswith("{"):
        try:
            gold = json.loads(label)
        except ValueError:
            pass
    if isinstance(gold, Mapping):
        scheme_ref = gold.get("scheme") or default_scheme
        gold = gold.get("gold", gold.get("label"))
    if isinstance(scheme_ref, LabelScheme):
        scheme = scheme_ref
    elif isinstance(scheme_ref, str):
        scheme = _scheme_named(scheme_ref)
    else:
        scheme = None
    if scheme is None or gold is None or isinstance(gold, bool | Mapping | list | tuple | set):
        return scheme, None
    return scheme, _gold_key(scheme, str(gold).strip())


class RelevanceReward:
    """``reward(response, label) -> float``; :meth:`score` gives the parts as well."""

    def __init__(self, settings: RewardSettings | None = None):
        self.settings = settings or RewardSettings()

    def __call__(self, response: Any, label: Any) -> float:
        return self.score(response, label).reward

    def score(self, response: Any, label: Any) -> RewardResult:
        try:
            return self._score(response, label)
        except RewardSetupError:
            raise
        except Exception:  # defensive: parse_response never raises, but labels come from anywhere
            return ZERO

    def _score(self, response: Any, label: Any) -> RewardResult:
        s = self.settings
        scheme, gold = resolve_label(label, s.scheme)
        if scheme is None:
            return ZERO
        parsed = parse_response(response, scheme, s.format)
        reward = s.format_weight if parsed.format_ok else 0.0
        correct = 0.0
        if gold is not None and parsed.label is not None and (parsed.format_ok or not s.correct_requires_format):
            if parsed.label == gold:
                correct = 1.0
                reward += s.correct_weight
            elif s.partial_credit:
                distance = abs(scheme.rank(parsed.label) - scheme.rank(gold))
                if distance <= len(s.partial_credit):
                    reward += s.correct_weight * s.partial_credit[distance - 1]
        return RewardResult(float(reward), correct, parsed.format_ok, parsed.label, gold)


@runtime_checkable
class Reward(Protocol):
    """What a registered reward factory returns (see ``hookspecs.register_reward_functions``)."""

    def score(self, response: Any, label: Any) -> RewardResult: ...

    def __call__(self, response: Any, label: Any) -> float: ...


def correctness_reward(settings: RewardSettings) -> RelevanceReward:
    """Plain 0/1 correctness: what pass@N counts and OpenRLHF's dynamic filtering reads as ``scores``."""
    return RelevanceReward(settings.model_copy(update={"format_weight": 0.0, "correct_weight": 1.0, "partial_credit": ()}))


def build_reward(settings: RewardSettings | None = None) -> Reward:
    """The reward function registered as ``settings.function``, made with ``settings``; UnknownPluginError
    (listing the registered ones) for a name no plugin registers, and OptionError naming an entry of
    ``settings.options`` that the factory's ``options_model`` refuses (a factory without one checks them itself)."""
    from taosr1_plugins import plugins
    from taosr1_plugins.core.options import validate_options

    settings = settings or RewardSettings()
    factory = plugins.get("reward", settings.function)
    validate_options(factory, settings.options, what=f"reward function {settings.function!r}")
    return factory(settings)


def check_batch(**columns: Any) -> int:
    """The common length of a framework's per-sample argument lists; ValueError naming every length.

    Called at an adapter's boundary: ``zip`` would silently score the shorter batch, and ``None`` for a
    list would fail deep inside with a TypeError. Content (any string, any label) is not checked here.
    """
    lengths = {}
    for name, value in columns.items():
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ValueError(f"reward: {name} must be a list with one entry per sample, got {type(value).__name__}")
        lengths[name] = len(value)
    if len(set(lengths.values())) > 1:
        raise ValueError("reward: per-sample lists differ in length: " + ", ".join(f"{k}={v}" for k, v in lengths.items()))
    return next(iter(lengths.values()), 0)


REWARD_CONFIG_ENV = "TAOSR1_REWARD_CONFIG"


@functools.lru_cache(maxsize=8)
def _reward_for_config(path: str | None) -> Reward:
    return build_reward(load_reward_settings(path))


def reward_from_env() -> Reward:
    """The reward configured by the YAML file named in ``$TAOSR1_REWARD_CONFIG`` (defaults without it).

    Framework reward files (OpenRLHF, verl) are loaded by path inside workers and get no arguments, so
    their settings travel in the environment (e.g. a Ray job's ``runtime_env.env_vars``).
    """
    return _reward_for_config(os.environ.get(REWARD_CONFIG_ENV) or None)


def check_reward_setup() -> Reward:
    """The configured reward, after proving it can score here: the plugins load (pluggy and the built-in
    schemes), ``$TAOSR1_REWARD_CONFIG`` reads and validates, its reward function is registered here (a
    plugin's reward must be installed on every worker too), its default scheme resolves.

    Framework reward files call this when they are imported, i.e. when OpenRLHF's rollout actor or verl's
    reward loader loads them, so a broken worker environment stops the job at start-up with the reason,
    instead of every response scoring 0 (OpenRLHF logs reward errors at info level and carries on).
    """
    import sys

    where = f"(Python {sys.executable})"
    try:
        import pluggy  # noqa: F401  (not an OpenRLHF or verl dependency: absent on many Ray workers)

        from taosr1_plugins.plugins import load_plugins

        load_plugins()
    except Exception as exc:
        raise RewardSetupError(
            f"the taosr1 reward cannot load its plugins {where}: {type(exc).__name__}: {exc}. Install the core "
            "dependencies where the reward runs (pip install taosr1-plugins, or pluggy pydantic pyyaml typer on "
            "every Ray worker), not only on the head node"
        ) from exc
    path = os.environ.get(REWARD_CONFIG_ENV) or None
    try:
        settings = load_reward_settings(path)
    except Exception as exc:
        raise RewardSetupError(f"${REWARD_CONFIG_ENV}={path}: cannot load the reward settings {where}: {exc}") from exc
    from taosr1_plugins.errors import UnknownPluginError

    try:
        reward = _reward_for_config(path)
    except UnknownPluginError as exc:
        raise RewardSetupError(f"${REWARD_CONFIG_ENV}={path}: field 'function': {exc} {where}") from exc
    except Exception as exc:
        raise RewardSetupError(
            f"${REWARD_CONFIG_ENV}={path}: reward function {settings.function!r} cannot be made {where}: {exc}"
        ) from exc
    from taosr1_plugins.core.schemes import get_scheme

    try:
        get_scheme(settings.scheme)
    except Exception as exc:
        raise RewardSetupError(f"${REWARD_CONFIG_ENV}={path}: field 'scheme': {exc}") from exc
    return reward


# Responses decoded with their special tokens (OpenRLHF decodes with skip_special_tokens=False) end in
# an end-of-turn marker that the strict format check would count as text outside the tags.
_LITERAL_END_TOKENS = ("</s>", "<eos>", "<end_of_turn>")


def strip_trailing_special_tokens(text: Any) -> Any:
    """Remove trailing ``<|...|>``-style and common literal end tokens, in time linear in what is removed.

    The scan moves an end index instead of cutting the string: a response of a million ``</s>`` would
    otherwise be copied once per token removed.
    """
    if not isinstance(text, str):
        return text
    end = len(text)
    while True:
        while end and text[end - 1].isspace():
            end -= 1
        if text.endswith("|>", 0, end):
            start = text.rfind("<|", max(0, end - 48), end)
            inner = text[start + 2 : end - 2] if start >= 0 else ""
            if start < 0 or "|" in inner or "<" in inner:
                break
            end = start
            continue
        literal = next((t for t in _LITERAL_END_TOKENS if text.endswith(t, 0, end)), None)
        if literal is None:
            break
        end -= len(literal)
    return text[:end]
