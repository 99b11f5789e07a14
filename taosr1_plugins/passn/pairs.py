"""Stage 2 preference pairs from pass@N samples (TaoSR1's DPO data).

Per prompt, the samples fall into:

- *chosen* candidates: valid format and the gold label;
- *rejected* candidates, in order of preference: a wrong label in a valid format (the clearest
  signal), a wrong label in a broken format, then a broken format (no label, or the gold label wrapped
  wrongly).

Rules, all per prompt:

- **all correct** (every sample names the gold label): no label preference to learn; skipped by
  default. With ``skip_all_correct=False`` such a prompt still yields format-only pairs (valid vs. broken
  format) when some of its samples are malformed.
- **all wrong** (no chosen candidate): with ``gold_cot_when_all_wrong`` the gold CoT from the SFT data,
  rendered with :func:`formats.render_response`, is the chosen response; prompts without a gold CoT are
  skipped and counted.
- identical texts are deduplicated (after stripping whitespace) within each side; pair ``i`` is
  ``(chosen[i mod C], rejected[i mod R])`` for ``i < min(cap, max(C, R))``, so every distinct candidate is
  used before any repeats and no pair repeats.

Framework-free; the writers for LLaMA-Factory and OpenRLHF live in ``integrations``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taosr1_plugins.core.formats import render_response
from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.passn.config import PairOptions  # noqa: F401 (declared with the stage's settings)
from taosr1_plugins.passn.sample import SampledResponse, SampleRow, read_samples
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import get_scheme

# writes the pairs as one framework's dataset under (out_dir, name); returns that dataset's summary entry
PairWriter = Callable[[Sequence["Pair"], Path, str], dict[str, Any]]

# rejected preference: lower is preferred
WRONG_LABEL, WRONG_LABEL_BROKEN_FORMAT, BROKEN_FORMAT = 0, 1, 2
REJECT_KIND = {WRONG_LABEL: "wrong_label", WRONG_LABEL_BROKEN_FORMAT: "wrong_label_broken_format", BROKEN_FORMAT: "broken_format"}


@dataclass(frozen=True)
class Pair:
    id: str  # record id of the prompt
    gold: str
    scheme: str
    messages: tuple[dict[str, str], ...]  # system + user prompt the responses answer
    chosen: str
    rejected: str
    chosen_source: str  # "sample" or "gold_cot"
    rejected_kind: str  # wrong_label / wrong_label_broken_format / broken_format
    rejected_label: str | None


@dataclass
class LevelSummary:
    prompts: int = 0
    pairs: int = 0
    prompts_with_pairs: int = 0
    skipped_all_correct: int = 0
    gold_cot_used: int = 0
    skipped_all_wrong_no_gold: int = 0
    rejected_labels: Counter = field(default_factory=Counter)


def rejected_rank(response: SampledResponse, gold: str) -> int | None:
    """Preference rank of a response as a rejected candidate; None for a correct one."""
    if response.correct:
        return None
    if response.label is not None and response.label != gold:
        return WRONG_LABEL if response.format_ok else WRONG_LABEL_BROKEN_FORMAT
    return BROKEN_FORMAT


def _unique(texts: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    seen, out = set(), []
    for text, extra in texts:
        key = text.strip()
        if key and key not in seen:
            seen.add(key)
            out.append((text, extra))
    return out


def prompt_pairs(row: SampleRow, gold_cot: str | None, options: PairOptions, summary: LevelSummary) -> list[Pair]:
    """The pairs of one prompt (and its counts added to ``summary``)."""
    summary.prompts += 1
    if options.skip_all_correct and all(r.label == row.gold for r in row.responses):
        summary.skipped_all_correct += 1
        return []
    chosen = _unique((r.text, "sample") for r in row.responses if r.correct)
    if not chosen:
        if not (options.gold_cot_when_all_wrong and gold_cot):
            summary.skipped_all_wrong_no_gold += 1
            return []
        chosen = [(render_response(gold_cot, row.gold, get_scheme(row.scheme), row.fmt), "gold_cot")]
        summary.gold_cot_used += 1
    ranked = sorted(
        ((rejected_rank(r, row.gold), i, r) for i, r in enumerate(row.responses) if not r.correct),
        key=lambda item: (item[0], item[1]),
    )
    rejected = _unique((r.text, (rank, r.label)) for rank, _, r in ranked)
    count = min(options.max_pairs_per_prompt, max(len(chosen), len(rejected))) if rejected else 0
    pairs = []
    for i in range(count):
        chosen_text, source = chosen[i % len(chosen)]
        rejected_text, (rank, label) = rejected[i % len(rejected)]
        pairs.append(
            Pair(
                id=row.id, gold=row.gold, scheme=row.scheme, messages=tuple(row.messages),
                chosen=chosen_text, rejected=rejected_text, chosen_source=source,
                rejected_kind=REJECT_KIND[rank], rejected_label=label,
            )
        )
        summary.rejected_labels[label if label is not None else "<invalid>"] += 1
    summary.pairs += len(pairs)
    summary.prompts_with_pairs += bool(pairs)
    return pairs


def select_pairs(
    rows: Iterable[SampleRow], gold_cots: dict[str, str], options: PairOptions
) -> tuple[list[Pair], dict[str, LevelSummary]]:
    per_level: dict[str, LevelSummary] = {}
    pairs: list[Pair] = []
    for row in rows:
        pairs.extend(prompt_pairs(row, gold_cots.get(row.id), options, per_level.setdefault(row.gold, LevelSummary())))
    return pairs, dict(sorted(per_level.items()))


def build_pairs(
    samples: str | Path | Sequence[SampleRow],
    sft_records: Sequence[Record],
    out_dir: str | Path,
    options: PairOptions | None = None,
    *,
    writers: Mapping[str, PairWriter],
) -> dict[str, Any]:
    """Select pairs and write them into ``out_dir`` with each of ``writers``; returns the summary (also
    ``<name>.summary.json``), which holds each writer's entry under its key.

    The writers come from the caller so that this stage does not depend on the training frameworks
    (``integrations.dpo_pair_writers()`` gives LLaMA-Factory's and OpenRLHF's).
    """
    options = options or PairOptions()
    out_dir = Path(out_dir)
    rows = read_samples(samples) if isinstance(samples, str | Path) else samples
    gold_cots = {r.id: r.cot for r in sft_records if r.cot}
    pairs, per_level = select_pairs(rows, gold_cots, options)
    written = {key: write(pairs, out_dir, options.name) for key, write in writers.items()}
    summary = {
        "name": options.name,
        "pairs": len(pairs),
        "prompts": sum(s.prompts for s in per_level.values()),
        "prompts_with_pairs": sum(s.prompts_with_pairs for s in per_level.values()),
        "skipped_all_correct": sum(s.skipped_all_correct for s in per_level.values()),
        "gold_cot_used": sum(s.gold_cot_used for s in per_level.values()),
        "skipped_all_wrong_no_gold": sum(s.skipped_all_wrong_no_gold for s in per_level.values()),
        "chosen_from_gold_cot": sum(p.chosen_source == "gold_cot" for p in pairs),
        "rejected_kinds": dict(Counter(p.rejected_kind for p in pairs)),
        "per_level": {
            level: {**{k: v for k, v in vars(s).items() if k != "rejected_labels"}, "rejected_labels": dict(s.rejected_labels)}
            for level, s in per_level.items()
        },
        "options": options.model_dump(),
        **written,
    }
    with atomic_write(out_dir / f"{options.name}.summary.json") as fh:
        json.dump(summary, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return summary


def pairs_table(summary: dict[str, Any]):
    """Label balance: per gold level, prompts, pairs and why prompts gave none (rich table)."""
    from rich.table import Table

    table = Table(title=f"DPO pairs ({summary['name']}): {summary['pairs']} from {summary['prompts']} prompts")
    columns = ("gold level", "prompts", "with pairs", "pairs", "share", "all correct (skipped)", "gold CoT chosen",
               "all wrong, no CoT", "rejected labels")
    for column in columns:
        table.add_column(column, justify="left" if column in ("gold level", "rejected labels") else "right")
    total = summary["pairs"] or 1
    for level, s in summary["per_level"].items():
        rejected = ", ".join(f"{k}:{v}" for k, v in sorted(s["rejected_labels"].items()))
        table.add_row(level, str(s["prompts"]), str(s["prompts_with_pairs"]), str(s["pairs"]), f"{s['pairs'] / total:.0%}",
                      str(s["skipped_all_correct"]), str(s["gold_cot_used"]), str(s["skipped_all_wrong_no_gold"]), rejected)
    table.add_section()
    table.add_row("all", str(summary["prompts"]), str(summary["prompts_with_pairs"]), str(summary["pairs"]), "100%",
                  str(summary["skipped_all_correct"]), str(summary["gold_cot_used"]),
                  str(summary["skipped_all_wrong_no_gold"]), "")
    return table
