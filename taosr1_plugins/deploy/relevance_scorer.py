"""The Python API for scoring: (query, item) pairs in, a label, tier, probabilities and score per pair out.

    from taosr1_plugins import RelevanceScorer

    scorer = RelevanceScorer("runs/x/grpo/model", cumpt="runs/x/deploy/cumpt.json")
    [p] = scorer.predict([("red shoes", "Acme red running shoe")])
    p.tier, p.score, p.probs

The third door to the scoring code, beside `taosr1 score` and `taosr1 serve`, and built from the same parts: the
model named as every command names it (core.models.resolve_model), the deployment adapter loaded by
scoring.load_scorer, each batch scored by scoring.score_batch (scored_pair.py builds every pair), and the
fields rounded by ScoredPair.fields. So a prediction carries the very numbers a scores.jsonl row holds for the
same pair, batch size and device. This module imports no ML framework; the adapter does, when a scorer is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.deploy.config import ExplainSettings, ScoringSettings
from taosr1_plugins.errors import DataError, UserError, first_problem

ItemLike = str | Mapping[str, Any] | Item  # a title, or the item's fields (title, description, brand, ...)
PairLike = tuple[str, ItemLike] | Mapping[str, Any] | Record  # (query, item) or {"query": ..., "item": ...}


@dataclass(frozen=True)
class Prediction:
    """One scored pair: the fields of a `taosr1 score` row and of a `taosr1 serve` result (scored_pair.py).

    ``probs`` (p(level), most relevant level first) and ``label`` (their argmax) are the model's own; ``tier``
    (the decision to serve: CumPT's with a cumpt.json, else the label), ``score`` (the expected level scaled to
    [0, 1], to rank pairs inside a tier) and ``margin`` (the tier's distance from changing, with a cumpt.json
    only) are read from the calibrated distribution."""

    probs: dict[str, float]
    label: str
    tier: str
    score: float
    margin: float | None = None
    explanation: str | None = None  # the reasoning after the tier's label, when asked for

    def to_dict(self) -> dict[str, Any]:
        """The fields as a `taosr1 serve` result holds them (no ``margin`` without a cumpt.json)."""
        out: dict[str, Any] = {"probs": dict(self.probs), "label": self.label, "tier": self.tier, "score": self.score}
        if self.margin is not None:
            out["margin"] = self.margin
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


class RelevanceScorer:
    """A relevance model loaded once, to score (query, item) pairs as `taosr1 score` does.

    ``model``: a trained model folder, a built-in model (``smollm2``, ``tiny``) or a Hub id.
    ``cumpt``: the cumpt.json of `taosr1 calibrate` (or a run's deploy stage): tiers, scores and margins from
    its calibration and thresholds; without it the tier is the argmax label.
    ``scheme``: the label scheme; needed only when neither the model folder (taosr1_scheme.json, written by the
    training stages) nor the cumpt.json names it, and refused when it contradicts them.
    ``backend``, ``device``, ``batch_size``, ``options``: as `taosr1 score` takes them (``options``: the
    adapter's own, e.g. ``{"dtype": "bfloat16"}``).

    Not safe to call from several threads at once (one model); `taosr1 serve` batches concurrent callers.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        cumpt: str | Path | None = None,
        scheme: str | None = None,
        backend: str = ScoringSettings.model_fields["backend"].default,
        device: str = "auto",
        batch_size: int = ScoringSettings.model_fields["batch_size"].default,
        options: Mapping[str, Any] | None = None,
        explain_margin: float = ExplainSettings.model_fields["explain_margin"].default,
        max_explain_tokens: int = ExplainSettings.model_fields["max_explain_tokens"].default,
    ):
        from taosr1_plugins.core.model_scheme import resolve_model_scheme
        from taosr1_plugins.deploy.calibration import load_cumpt
        from taosr1_plugins.deploy.config import ScoreSettings
        from taosr1_plugins.deploy.scoring import load_scorer, resolve_scoring_model

        # every setting is checked before the model loads: a mistake costs a second, not a model load
        try:
            self.settings = ScoreSettings(backend=backend, device=device, batch_size=batch_size,
                                          options=dict(options or {}), explain_margin=explain_margin,
                                          max_explain_tokens=max_explain_tokens, progress=False)
        except ValidationError as exc:
            field, message = first_problem(exc)
            raise UserError(f"RelevanceScorer {field}: {message}") from None
        cumpt_file = load_cumpt(cumpt) if cumpt is not None else None
        self.cumpt = cumpt_file.to_cumpt() if cumpt_file else None
        self.model = resolve_scoring_model(model, backend)
        self.scheme = resolve_model_scheme(self.model, scheme, cumpt_file)
        self._scorer = load_scorer(self.model, self.scheme, self.settings)

    def __repr__(self) -> str:
        tiering = "cumpt" if self.cumpt else "argmax"
        return f"RelevanceScorer({self.model!r}, scheme={self.scheme.name!r}, tiering={tiering!r})"

    def predict(self, pairs: Iterable[PairLike], *, explain: str | bool = "never") -> list[Prediction]:
        """One :class:`Prediction` per pair, in order, scored ``batch_size`` pairs per forward pass.

        A pair is ``(query, item)`` or ``{"query": ..., "item": ...}``, the item a title or a mapping of its
        fields (``title`` and optionally ``description``, ``brand``, ``color``, ``category``, ``attributes``).
        ``explain``: ``never``, ``always`` (also decode the reasoning; slow) or ``auto`` (only pairs whose tier
        margin is below ``explain_margin``; needs a cumpt.json)."""
        from taosr1_plugins.deploy.scoring import ExplainPolicy, score_batch

        mode = {True: "always", False: "never"}.get(explain, explain) if isinstance(explain, bool) else explain
        policy = ExplainPolicy(mode, self.settings.explain_margin, self.cumpt)  # a bad mode before any pass
        records = [_record(i, pair, self.scheme.name) for i, pair in enumerate(pairs)]
        size = self.settings.batch_size
        out: list[Prediction] = []
        for start in range(0, len(records), size):  # the batches score_records forms from the same pairs
            for pair, text in score_batch(self._scorer, records[start : start + size], self.scheme, policy):
                out.append(Prediction(**pair.fields(), explanation=text))
        return out


def _record(index: int, pair: PairLike, scheme: str) -> Record:
    """``pair`` as the record the scorer renders; a DataError naming ``pairs[index]`` and the field if it is not one."""
    where = f"pairs[{index}]"
    if isinstance(pair, Record):
        if pair.scheme != scheme:
            raise DataError(where, None, "scheme", f"is {pair.scheme!r}; this scorer's scheme is {scheme!r}")
        return pair
    if isinstance(pair, Mapping):
        unknown = set(pair) - {"query", "item", "id"}
        if unknown:
            raise DataError(where, None, None, f"unknown keys {sorted(unknown)}; a pair has query and item")
        query, item, pair_id = pair.get("query"), pair.get("item"), pair.get("id")
    elif isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2:
        (query, item), pair_id = pair, None
    else:
        raise DataError(where, None, None, "a pair is (query, item) or {'query': ..., 'item': ...}")
    if isinstance(item, str):
        item = {"title": item}
    elif isinstance(item, Item):
        item = item.model_dump()
    try:
        return Record(id=str(pair_id or f"pair-{index}"), query=query, item=item, scheme=scheme)
    except ValidationError as exc:
        field, message = first_problem(exc)
        raise DataError(where, None, field, message) from None
