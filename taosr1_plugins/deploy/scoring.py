"""Post-CoT scoring: p(level) for every level from one next-token distribution per (query, item) pair.

The served model answers label-first (``<answer>LABEL</answer>\\n<think>…</think>``), so the prompt
rendered through the chat template plus the prefix ``<answer>`` puts the label at the next position. The
logits of the scheme's verbalizer tokens there, softmax-renormalised, are the level probabilities; the
reasoning is decoded only when an explanation is asked for.

Backends ("deployment adapters") are plugins: ``register_deployment_adapters`` registers
``factory(model, scheme, **options) -> LabelScorer``, with an ``options_model`` if it declares its options
(see :mod:`taosr1_plugins.core.options`); the built-ins are ``hf`` and ``vllm`` (``deploy/scorers/``).
This module imports no ML framework.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taosr1_plugins.deploy.config import EXPLAIN_MODES, ExplainSettings, ScoreSettings
from taosr1_plugins.deploy.cumpt import CumPT
from taosr1_plugins.deploy.scored_pair import ScoredPair, score_pair
from taosr1_plugins.errors import DataError, OutputExistsError
from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.hf_chat import render_chat
from taosr1_plugins.core.jsonl import ResumableJsonl, iter_numbered_jsonl
from taosr1_plugins.core.progress import progress_bar
from taosr1_plugins.core.prompts import PromptStyle, build_messages
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, get_scheme, scheme_of

ANSWER_PREFIX = "<answer>"
PROB_TOLERANCE = 1e-3  # stored probabilities are rounded; their sum may drift this much from 1


class LabelScorer(Protocol):
    """What a deployment adapter's factory returns."""

    scheme: LabelScheme

    def probabilities(self, records: Sequence[Record]) -> list[list[float]]:
        """Per record, p(level) in scheme order (most relevant first), summing to 1."""

    def explain(self, records: Sequence[Record], labels: Sequence[str]) -> list[str]:
        """The reasoning a model writes after ``<answer>LABEL</answer>`` for each record."""


def renormalise(logits: Sequence[float]) -> list[float]:
    """Softmax over the verbalizer logits only (numerically stable)."""
    top = max(logits)
    if math.isinf(top):
        raise ValueError(f"verbalizer logits are not finite: {list(logits)}")
    weights = [math.exp(x - top) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def scoring_prompt(tokenizer: Any, record: Record, scheme: LabelScheme, style: PromptStyle | None = None) -> str:
    """The answer-first chat prompt, ending right before the label token."""
    return render_chat(tokenizer, build_messages(record, scheme, ResponseFormat.ANSWER_FIRST, style)) + ANSWER_PREFIX


def explanation_prompt(
    tokenizer: Any, record: Record, scheme: LabelScheme, label: str, style: PromptStyle | None = None
) -> str:
    """The scoring prompt continued with the chosen label, opening the reasoning block."""
    return f"{scoring_prompt(tokenizer, record, scheme, style)}{scheme.level(label).token}</answer>\n<think>\n"


def clean_explanation(text: str) -> str:
    return text.split("</think>", 1)[0].strip()


def verbalizer_token_ids(tokenizer: Any, scheme: LabelScheme) -> list[int]:
    """Token id of each level's verbalizer, in scheme order; fails unless each is one token after '<answer>'."""
    scheme.check_tokenizer(tokenizer)
    return [tokenizer.encode(level.token, add_special_tokens=False)[0] for level in scheme.levels]


# --- score files -----------------------------------------------------------------------------------------


class ScoreRow(BaseModel):
    """One line of scores.jsonl."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    scheme: str = Field(min_length=1)
    scheme_file: str | None = Field(None, description="the YAML file of a scheme that is not registered")
    # the fields of a scored pair (scored_pair.py): probs and label are the model's own, tier, score and
    # margin are read from the calibrated distribution
    probs: dict[str, float] = Field(description="p(level) for every level of the scheme, uncalibrated")
    label: str = Field(description="argmax level of probs")
    score: float = Field(ge=0, le=1, description="expected level of the calibrated distribution, scaled to [0, 1]")
    gold: str | None = None
    tags: list[str] = Field(default_factory=list)
    explanation: str | None = None
    # optional, so score files written before these existed still read: the query groups pairs for the
    # ranking view; tier is written on every row now (the argmax label without a cumpt.json), margin only
    # with a cumpt.json
    query: str | None = None
    tier: str | None = None
    margin: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ScoreRow:
        if any(not 0 <= p <= 1 for p in self.probs.values()):
            raise ValueError(f"probabilities must lie in [0, 1], got {self.probs}")
        if abs(sum(self.probs.values()) - 1) > PROB_TOLERANCE:
            raise ValueError(f"probabilities must sum to 1, got {sum(self.probs.values()):.4f}")
        return self


@dataclass
class ScoreSet:
    """The rows of one score file, all of one scheme."""

    path: Path
    scheme: LabelScheme
    rows: list[ScoreRow]

    def ordered_probs(self) -> list[list[float]]:
        return [[row.probs[key] for key in self.scheme.keys] for row in self.rows]

    @property
    def labelled(self) -> list[ScoreRow]:
        return [row for row in self.rows if row.gold is not None]


def read_scores(path: str | Path, *, require_gold: bool = False) -> ScoreSet:
    """Read and check a score file: one scheme, probabilities for exactly its levels, gold among them."""
    path = Path(path)
    scheme: LabelScheme | None = None
    rows: list[ScoreRow] = []
    for lineno, row in iter_numbered_jsonl(path, ScoreRow):
        if scheme is None:
            try:
                scheme = get_scheme(row.scheme, row.scheme_file)
            except (ValueError, KeyError) as exc:
                raise DataError(str(path), lineno, "scheme", str(exc)) from exc
        if row.scheme != scheme.name:
            raise DataError(str(path), lineno, "scheme", f"{row.scheme!r} differs from {scheme.name!r} on earlier lines")
        if set(row.probs) != set(scheme.keys):
            raise DataError(str(path), lineno, "probs", f"keys {sorted(row.probs)} are not the levels {scheme.keys}")
        if row.gold is not None and row.gold not in scheme.keys:
            raise DataError(str(path), lineno, "gold", f"{row.gold!r} is not a level of {scheme.name!r}")
        if require_gold and row.gold is None:
            raise DataError(str(path), lineno, "gold", "no gold label; calibration and evaluation need labelled pairs")
        rows.append(row)
    if scheme is None:
        raise DataError(str(path), None, None, "no score rows")
    return ScoreSet(path, scheme, rows)


def score_row(record: Record, scheme: LabelScheme, pair: ScoredPair, explanation: str | None = None) -> dict:
    """One line of scores.jsonl: the record's own fields around the scored pair's (the server's result has
    the same scored-pair fields, from the same builder)."""
    row = {"id": record.id, "scheme": scheme.name, **pair.fields(), "gold": record.label, "tags": record.tags,
           "query": record.query}
    if scheme.file:  # calibrate and eval read the scheme from it, in processes that never saw the records
        row["scheme_file"] = scheme.file
    if explanation is not None:
        row["explanation"] = explanation
    return row


# --- the scoring job -------------------------------------------------------------------------------------


DEFAULT_EXPLAIN_MARGIN = ExplainSettings.model_fields["explain_margin"].default


@dataclass
class ExplainPolicy:
    """Which pairs get their reasoning decoded: none, all, or (auto) those whose tier is in doubt.

    ``auto`` explains a pair when its CumPT tier margin (cumpt.tier_margin) is below ``margin``: the
    pairs a small change of the model or thresholds would move to another tier, where a reviewer most
    needs the reason. It needs thresholds; without them there is no margin to measure.
    """

    mode: str = "never"
    margin: float = DEFAULT_EXPLAIN_MARGIN
    cumpt: CumPT | None = None

    def __post_init__(self) -> None:
        if self.mode not in EXPLAIN_MODES:
            raise ValueError(f"explain must be one of {', '.join(EXPLAIN_MODES)}, got {self.mode!r}")
        if self.mode == "auto" and self.cumpt is None:
            raise ValueError("explain 'auto' decides by the CumPT tier margin: give a cumpt.json")
        if not 0 <= self.margin <= 1:
            raise ValueError(f"explain margin must lie in [0, 1], got {self.margin}")

    def wants(self, pair: ScoredPair) -> bool:
        """``pair`` was scored with this policy's cumpt, so its margin is the one to compare."""
        if self.mode == "auto":
            assert pair.margin is not None, "explain 'auto' needs pairs scored with the policy's cumpt"
            return pair.margin < self.margin
        return self.mode == "always"


def records_scheme(records: Sequence[Record], source: str = "<records>") -> LabelScheme:
    names = {record.scheme for record in records}
    if len(names) != 1:
        raise DataError(source, None, "scheme", f"a score run needs records of one scheme, got {sorted(names)}")
    return scheme_of(records[0])


def resolve_scoring_model(model: str | Path, backend: str = "hf") -> str:
    """``model`` as adapter ``backend`` loads it: a built-in name, folder or Hub id resolved and checked
    (core.models.resolve_model) for an adapter that loads a checkpoint; a served model's name as it is."""
    from taosr1_plugins import plugins
    from taosr1_plugins.core.models import resolve_model
    from taosr1_plugins.core.options import loads_checkpoint

    return resolve_model(model) if loads_checkpoint(plugins.get("deployment_adapter", backend)) else str(model)


def load_scorer(model: str | Path, scheme: LabelScheme, settings: ScoreSettings) -> LabelScorer:
    from taosr1_plugins import plugins

    from taosr1_plugins.core.options import offered

    adapter = plugins.get("deployment_adapter", settings.backend)
    # the job's own settings, to an adapter whose options model has them (all of them without a model)
    options = offered(adapter, settings.options or {}, device=settings.device, batch_size=settings.batch_size,
                      max_explain_tokens=settings.max_explain_tokens)
    return adapter(str(model), scheme, **options)


def score_records(
    model: str | Path | LabelScorer,
    records: Sequence[Record],
    out: str | Path,
    settings: ScoreSettings | None = None,
) -> Path:
    """Score ``records`` into ``out`` (JSONL of :class:`ScoreRow`); resumes an interrupted run.

    Rows are appended to ``out.partial`` batch by batch and the file is renamed to ``out`` at the end,
    so ``out`` exists only when complete. ``model`` is a checkpoint (loaded with ``settings.backend``)
    or an already loaded scorer. With ``settings.executor`` ray a checkpoint is scored on a Ray cluster
    (deploy/ray_data/): the same rows, in another order.
    """
    settings = settings or ScoreSettings()
    if settings.executor == "ray" and not hasattr(model, "probabilities"):
        from taosr1_plugins.deploy.pair_files import PairSource
        from taosr1_plugins.deploy.ray_data.executor import score_on_ray

        return score_on_ray(model, PairSource.of_records(records), out, settings)
    policy = ExplainPolicy(settings.explain, settings.explain_margin, settings.cumpt)
    out = Path(out)
    if out.exists() and not settings.overwrite:
        raise OutputExistsError(f"{out} exists")
    ids = [record.id for record in records]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DataError(None, None, "id", f"record id {duplicate!r} appears more than once")
    scheme = records_scheme(records)
    log = ResumableJsonl(out)
    try:
        done = log.done
        todo = [record for record in records if record.id not in done]
        scorer = model if hasattr(model, "probabilities") else (load_scorer(model, scheme, settings) if todo else None)
        for batch in _batches(todo, settings.batch_size, total=len(records), initial=len(records) - len(todo),
                              enabled=settings.progress):
            for record, (pair, text) in zip(batch, score_batch(scorer, batch, scheme, policy)):
                log.append(score_row(record, scheme, pair, text))
        log.finish()
    finally:
        log.close()
    return out


def score_batch(
    scorer: LabelScorer, batch: Sequence[Record], scheme: LabelScheme, policy: ExplainPolicy
) -> list[tuple[ScoredPair, str | None]]:
    """One batch in memory, as `taosr1 score` and the Python API (deploy/relevance_scorer.py) score it: one forward
    pass, each pair built by scored_pair.py with the policy's thresholds, and the reasoning of the pairs the
    policy wants (None for the others)."""
    pairs = [score_pair(p, scheme, policy.cumpt) for p in scorer.probabilities(batch)]
    explanations: list[str | None] = [None] * len(batch)
    wanted = [i for i, pair in enumerate(pairs) if policy.wants(pair)]
    if wanted:
        # the reasoning continues after the tier that is served
        texts = scorer.explain([batch[i] for i in wanted], [pairs[i].tier for i in wanted])
        for i, text in zip(wanted, texts):
            explanations[i] = text
    return list(zip(pairs, explanations))


def _batches(items: Sequence[Record], size: int, *, total: int, initial: int, enabled: bool) -> Iterable[list[Record]]:
    with progress_bar(total, desc="score", unit="pair", initial=initial, enabled=enabled) as bar:
        for start in range(0, len(items), max(1, size)):
            chunk = list(items[start : start + size])
            yield chunk
            bar.update(len(chunk))
