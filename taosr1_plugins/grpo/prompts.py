"""GRPO prompt rows (chat messages + a label that names its scheme) and the prompt sampler's choice of them.

Every row is ``{"id", "prompt": [messages], "label": {"gold": key, "scheme": name}}``: OpenRLHF reads it
with ``--data.input_key prompt --data.label_key label --data.apply_chat_template`` and hands ``label``
to our reward file unchanged (its prompt files are written by ``integrations/openrlhf/prompts.py``); TRL
reads ``prompt`` as a conversational prompt and passes ``label`` to the reward as a keyword column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taosr1_plugins.passn.difficulty import DifficultyRow
from taosr1_plugins.core.formats import ResponseFormat, render_response
from taosr1_plugins.grpo.config import GrpoSettings
from taosr1_plugins.core.prompts import PromptStyle, build_messages
from taosr1_plugins.core.records import Record
from taosr1_plugins.grpo.difficulty_mix import Selection
from taosr1_plugins.core.schemes import LabelScheme

def grpo_prompt_row(
    record: Record,
    scheme: LabelScheme,
    fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER,
    style: PromptStyle | None = None,
    gold_response: bool = False,
) -> dict[str, Any]:
    """``gold_response`` adds the record's reasoning and label as a response in ``fmt`` (empty without a
    reasoning trace), which guided replay puts into a group whose rollouts are all wrong."""
    if record.label is None:
        raise ValueError(f"record {record.id!r} has no label; GRPO needs the gold level for its reward")
    row = {
        "id": record.id,
        "prompt": build_messages(record, scheme, fmt, style),
        "label": {"gold": record.label, "scheme": scheme.name},
    }
    if gold_response:
        row["gold_response"] = render_response(record.cot, record.label, scheme, fmt) if record.cot else ""
    return row


def select_prompts(
    records: Sequence[Record], difficulty: Sequence[DifficultyRow], settings: GrpoSettings
) -> tuple[list[Record], Selection]:
    """The labelled records and the configured prompt sampler's choice among them by pass@N difficulty."""
    from taosr1_plugins import plugins

    labelled = [record for record in records if record.label is not None]
    sampler = plugins.get("prompt_sampler", settings.sampler)(**settings.sampling.model_dump())
    return labelled, sampler.select([record.id for record in labelled], difficulty)
