"""LLaMA-Factory dataset converters for taosr1 record rows (``"formatting"`` in dataset_info.json).

- ``taosr1_cot``: think-then-answer targets, ``<think>reasoning</think><answer>LABEL</answer>`` (stage 1 SFT);
- ``taosr1_post_cot``: answer-first targets (the post-CoT serving form: the label is decoded first).

Each row becomes our system message (instructions and the scheme's level definitions) as ``_system``, the
query and item as the single user turn, and the rendered reasoning + label as the assistant turn, built
by the same ``prompts``/``formats`` code every other stage uses, so train and serve prompts cannot drift.

Rows without a label raise (there is no SFT target; ``datasets.map`` cannot skip rows). Rows without a
CoT get an answer-only target ``<answer>LABEL</answer>`` (a direct-answer example) and a warning: the
exporter refuses them unless ``--allow-missing-cot`` was given, so they only appear on purpose.

This module imports LLaMA-Factory; import it only where LLaMA-Factory is installed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from llamafactory.data.converter import DatasetConverter
from llamafactory.data.data_utils import Role

from taosr1_plugins.core.formats import ResponseFormat, answer_only, render_response
from taosr1_plugins.core.prompts import PromptStyle, build_messages
from taosr1_plugins.core.schemes import LabelScheme, get_scheme
from taosr1_plugins.integrations.llamafactory.rows import PROMPT_STYLE_COLUMN, record_from_row

logger = logging.getLogger(__name__)

FORMATTING_COT = "taosr1_cot"
FORMATTING_POST_COT = "taosr1_post_cot"


@functools.lru_cache(maxsize=None)
def _scheme(name: str, file: str | None) -> LabelScheme:
    return get_scheme(name, file)


@functools.lru_cache(maxsize=None)
def _style(text: str) -> PromptStyle:
    # hand-registered plain Record rows carry no style: the default one, as for a model without its style file
    return PromptStyle.model_validate_json(text) if text else PromptStyle()


_warned_missing_cot = False


def _warn_missing_cot_once(record_id: str) -> None:
    global _warned_missing_cot  # once per worker process: a large file would otherwise flood the log
    if not _warned_missing_cot:
        _warned_missing_cot = True
        logger.warning("records without cot (first: %r) get answer-only targets", record_id)


@dataclass
class TaoSR1Converter(DatasetConverter):
    """Record row -> LLaMA-Factory's aligned format (``_prompt``, ``_response``, ``_system``, ...)."""

    response_format: ClassVar[ResponseFormat] = ResponseFormat.THINK_ANSWER

    def __call__(self, example: dict[str, Any]) -> dict[str, Any]:
        record = record_from_row(example)
        scheme = _scheme(record.scheme, record.scheme_file)
        if record.label is None:
            raise ValueError(
                f"record {record.id!r} has no label: SFT needs one (taosr1 export llamafactory rejects such rows)"
            )
        try:
            scheme.level(record.label)
        except KeyError as exc:
            raise ValueError(f"record {record.id!r}: {exc.args[0]}") from exc
        if record.cot:
            response = render_response(record.cot, record.label, scheme, self.response_format)
        else:
            _warn_missing_cot_once(record.id)
            response = answer_only(record.label, scheme)
        system, user = build_messages(record, scheme, self.response_format, _style(example.get(PROMPT_STYLE_COLUMN) or ""))
        return {
            "_prompt": [{"role": Role.USER.value, "content": user["content"]}],
            "_response": [{"role": Role.ASSISTANT.value, "content": response}],
            "_system": system["content"],
            "_tools": "",
            "_images": None,
            "_videos": None,
            "_audios": None,
        }


@dataclass
class TaoSR1PostCotConverter(TaoSR1Converter):
    response_format: ClassVar[ResponseFormat] = ResponseFormat.ANSWER_FIRST


CONVERTERS: dict[str, type[DatasetConverter]] = {
    FORMATTING_COT: TaoSR1Converter,
    FORMATTING_POST_COT: TaoSR1PostCotConverter,
}
