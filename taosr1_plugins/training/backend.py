"""The training-backend seam: what the main job asks of a framework that trains SFT, DPO or GRPO.

A backend is registered through ``register_training_backends`` like every other plugin kind, and owns
everything about its framework: how a recipe becomes the framework's own config (and how a typo in it is
refused at preflight), its environment check, its launcher. The main job's stages (``pipeline/stages.py``)
only build a :class:`TrainingJob`, call ``backend.check`` before the first stage and ``backend.train`` in
the stage, and then write the run's prompt style into the model folder themselves, so no backend can forget
it. Framework-free: pydantic and the core only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.prompts import PromptStyle
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.errors import UserError
from taosr1_plugins.core import yaml_load

TRAINING_STAGES = ("sft", "dpo", "grpo")


class SettingError(UserError):
    """A backend refuses one setting of its stage's config section; ``field`` is relative to the section
    (``overrides.learning_rat``, ``options.launcher``), and preflight names the config file and the section."""

    def __init__(self, field: str, message: str, stage: str | None = None):
        self.field, self.message, self.stage = field, message, stage
        super().__init__(f"{stage + '.' if stage else ''}{field}: {message}")


class DryRunStop(Exception):
    """A stage only printed what it would launch: the run stops there, and the stage is not marked done."""


@dataclass
class TrainingJob:
    """One training stage as a backend sees it: where to start, what to read, where to write.

    ``data`` holds the stage's inputs, by stage:

    - ``sft``: ``records`` (the chosen examples as taosr1 Record JSONL), ``dataset_dir`` and ``dataset`` (the
      same examples as a LLaMA-Factory dataset), ``examples`` (how many);
    - ``dpo``: ``pairs_dir`` (``taosr1_dpo`` as a LLaMA-Factory ranking dataset, and
      ``taosr1_dpo.openrlhf.jsonl``, the conversational pairs TRL and OpenRLHF read);
    - ``grpo``: ``records`` (the CoT train records, as :class:`Record` objects), ``difficulty`` (their pass@N
      difficulty rows, :class:`DifficultyRow` objects; empty without a difficulty file): the stage has read them
      already, to warn when most prompts lack an estimate.

    ``method`` holds the stage's own settings that are ours, not the framework's: for SFT ``label_weight``,
    for GRPO the :class:`taosr1_plugins.grpo.config.GrpoSettings` (reward, prompt sampler, dynamic sampling).
    """

    stage: str
    model: str  # the checkpoint training starts from (a path, or a name the framework resolves)
    output_dir: Path  # the trained model folder the backend writes
    work_dir: Path  # the stage folder: the backend's logs, argument files and launch files
    fmt: ResponseFormat
    style: PromptStyle
    scheme: LabelScheme
    seed: int
    recipe: Path | None = None  # the framework's own arguments (a YAML file), if it reads one
    overrides: dict[str, Any] = field(default_factory=dict)  # on top of the recipe
    bf16: bool = False  # what the stage's `precision` resolved to on this machine
    options: Any = None  # the backend's validated options (an instance of its ``options_model``)
    data: dict[str, Any] = field(default_factory=dict)
    method: dict[str, Any] = field(default_factory=dict)
    resolve: Callable[[str | Path], Path] = Path  # relative paths in options resolve like the config's own

    def recipe_args(self, **fixed: Any) -> dict[str, Any]:
        """The recipe's arguments, then ``bf16``, then the config's overrides, then what the run itself decides
        (``fixed``: paths, the model)."""
        return recipe_args(self.recipe, {"bf16": self.bf16, **self.overrides}, **fixed)


@runtime_checkable
class TrainingBackend(Protocol):
    """What a framework provides. ``stages`` are those it trains; ``options_model`` validates the stage
    section's ``options`` (a pydantic model with ``extra="forbid"``)."""

    name: ClassVar[str]
    stages: ClassVar[tuple[str, ...]]
    options_model: ClassVar[type[BaseModel]]

    def check(self, job: TrainingJob) -> None:
        """Before the first stage runs: refuse what the framework would refuse (recipe and overrides built into
        its own config, its environment). Raise :class:`SettingError` or another ``UserError``."""

    def train(self, job: TrainingJob) -> dict[str, Any]:
        """Train into ``job.output_dir`` (weights, config, tokenizer); return a JSON-able summary. Raise
        :class:`DryRunStop` when the framework was only asked to print what it would run."""


def recipe_args(recipe: Path | None, overrides: Mapping[str, Any], **fixed: Any) -> dict[str, Any]:
    """A recipe YAML's arguments, then ``overrides``, then ``fixed`` (paths become strings)."""
    args = (yaml_load.safe_load(Path(recipe).read_text(encoding="utf-8")) or {}) if recipe is not None else {}
    args.update(overrides)
    args.update({key: str(value) if isinstance(value, Path) else value for key, value in fixed.items()})
    return args


def parse_options(backend: TrainingBackend, options: Mapping[str, Any]) -> BaseModel:
    """``options`` as the backend's options model (checked like every plugin's, by ``core.options``), or a
    :class:`SettingError` naming the first bad key."""
    from taosr1_plugins.core.options import OptionError, validate_options

    try:
        return validate_options(backend, options, what=f"training backend {backend.name!r}")
    except OptionError as exc:
        raise SettingError(f"options.{exc.option}" if exc.option != "options" else "options", exc.message) from None


def _where(job: TrainingJob, key: str) -> str:
    return f"overrides.{key}" if key in job.overrides else f"recipe {job.recipe}: {key}"


def refuse_unknown_args(job: TrainingJob, known: set[str], what: str) -> None:
    """A key of the recipe or the overrides that the framework's own config does not have: a typo that would
    otherwise fail, or be silently ignored, only once the stage starts."""
    recipe = recipe_args(job.recipe, {})
    unknown = sorted(set(job.overrides) - known) or sorted(set(recipe) - known)
    if not unknown:
        return
    from difflib import get_close_matches

    key = unknown[0]
    close = get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SettingError(_where(job, key), f"not an argument of {what}{hint}")


def _declared_types(classes: Sequence[type]) -> dict[str, Any]:
    """Each field's declared type, of the framework's argument dataclasses (string annotations resolved)."""
    import dataclasses
    import typing

    types: dict[str, Any] = {}
    for cls in classes:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation that does not resolve here: those fields keep their raw type
            hints = {}
        for f in dataclasses.fields(cls):
            types.setdefault(f.name, hints.get(f.name, f.type))
    return types


_SCALARS = (int, float, bool, str, type(None))


def _scalar(tp: Any) -> bool:
    """Whether ``tp`` is a plain scalar type (``float``, ``int | None``, a ``Literal``): a value the framework
    uses as given. A list, dict or enum field may be converted by the class itself (DPOConfig turns
    ``loss_type: sigmoid`` into a list), so its value is left to the class's own checks."""
    import types
    import typing

    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_scalar(arg) for arg in typing.get_args(tp))
    return tp in _SCALARS


def _type_problem(tp: Any, value: Any) -> str | None:
    """pydantic's message when ``value`` does not fit the scalar type ``tp`` (None when it does, or is not scalar)."""
    from pydantic import TypeAdapter, ValidationError

    if not _scalar(tp):
        return None
    try:
        TypeAdapter(tp).validate_python(value)
    except ValidationError as exc:
        return exc.errors()[0]["msg"]
    return None


def check_arg_values(job: TrainingJob, classes: Sequence[type], build: Callable[[dict[str, Any]], Any], what: str,
                     **fixed: Any) -> None:
    """The recipe and overrides as the framework's own argument classes read them, so a bad value fails at
    preflight and not when its stage starts: each value against its field's declared type (``num_train_epochs:
    abc``), then ``build(args)`` (the stage's arguments, with ``fixed`` standing in for what the run fills),
    which runs the classes' own checks (``lr_scheduler_type: nope``, ``finetuning_type: nope``). The key a
    refusal is about is the one whose removal lets the classes build."""
    values = recipe_args(job.recipe, job.overrides)
    given = [*job.overrides, *(key for key in values if key not in job.overrides)]  # the overrides named first
    types = _declared_types(classes)
    for key in given:
        if key in types and (problem := _type_problem(types[key], values[key])) is not None:
            raise SettingError(_where(job, key), f"{problem} ({what}), got {values[key]!r}")
    args = job.recipe_args(**fixed)

    def refusal(args: dict[str, Any]) -> Exception | None:
        try:
            build(args)
        except Exception as exc:  # the classes' checks raise ValueError, TypeError, even AssertionError
            return exc
        return None

    problem = refusal(args)
    if problem is None:
        return
    culprit = next((key for key in given if refusal({k: v for k, v in args.items() if k != key}) is None), None)
    message = (str(problem).strip().splitlines() or [type(problem).__name__])[0][:300]
    raise SettingError(_where(job, culprit) if culprit else "overrides", f"refused by {what}: {message}")


def get_backend(name: str) -> TrainingBackend:
    """The training backend registered as ``name`` (an instance); ``UnknownPluginError`` lists the others."""
    from taosr1_plugins import plugins

    return plugins.get("training_backend", name)()
