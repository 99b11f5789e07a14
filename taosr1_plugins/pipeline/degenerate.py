"""Stage results of `taosr1 run` that finished but cannot be what was meant (issue 31 item 6).

A split with an empty dev or test split, a CoT stage that kept no trace, a GRPO stage that never moved the
policy: each exits 0 and a later stage fails far from the cause, or the run reports a model that was not trained.
After each stage the runner asks :func:`stage_warnings`, prints what it says in yellow and records it in the
manifest, so a stage skipped as unchanged says it again; `taosr1 run --strict` stops there (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from taosr1_plugins.errors import UserError
from taosr1_plugins.pipeline.context import RunContext


class DegenerateStageError(UserError):
    """`taosr1 run --strict`: a stage finished with a warning."""


def stage_warnings(ctx: RunContext, name: str, outputs: dict[str, Any]) -> list[str]:
    check = CHECKS.get(name)
    return check(ctx, outputs) if check else []


def print_warnings(console: Console, name: str, warnings: list[str]) -> None:
    for warning in warnings:  # escaped: a warning quotes settings and responses, whose brackets are not markup
        console.print(f"[yellow]warning: {name}: {escape(warning)}[/yellow]", highlight=False)


def refuse_under_strict(name: str, warnings: list[str]) -> None:
    if warnings:
        more = f" (and {len(warnings) - 1} more above)" if len(warnings) > 1 else ""
        raise DegenerateStageError(f"{name}: {warnings[0]}{more}; --strict stops on a stage's warning")


# what each split is for in the main job: said with an empty one, since that is where the run will fail
_SPLIT_USE = {
    "dev": "the deploy stage fits its calibration and CumPT thresholds on dev and will fail",
    "test": "the deploy stage reports on test and will fail",
    "train": "CoT, SFT and RL train on train and will fail",
}


def _split(ctx: RunContext, sizes: dict[str, Any]) -> list[str]:
    from taosr1_plugins.core.jsonl import read_jsonl
    from taosr1_plugins.core.records import Record
    from taosr1_plugins.data.splits import GROUP_KEYS, empty_splits

    split = ctx.config.split
    if all(sizes.values()):
        return []
    key = GROUP_KEYS[split.by]
    groups = len({key(record) for record in read_jsonl(ctx.path("data", "all.jsonl"), Record)})
    return [f"{warning} (split.ratios, split.by); {_SPLIT_USE[name]}"
            for name, warning in empty_splits(sizes, split.ratios, groups, split.by).items()
            if split.max_pairs.get(name) != 0]  # a split capped to 0 pairs (split.max_pairs) is empty on purpose


def _cot(ctx: RunContext, outputs: dict[str, Any]) -> list[str]:
    from taosr1_plugins.cot.dropped import nothing_kept
    from taosr1_plugins.cot.generate import output_paths

    warning = nothing_kept(outputs, output_paths(ctx.path("cot", "train.jsonl"))["ledger"])
    return [warning] if warning else []


def _grpo(ctx: RunContext, outputs: dict[str, Any]) -> list[str]:
    from taosr1_plugins.grpo.stalled import stalled_policy

    warning = stalled_policy(outputs)
    return [warning] if warning else []


CHECKS: dict[str, Callable[[RunContext, dict[str, Any]], list[str]]] = {"split": _split, "cot": _cot, "grpo": _grpo}
