"""Post-CoT processing: turn think-then-answer training data into the answer-first serving form.

A model trained on ``<answer>LABEL</answer>\\n<think>…</think>`` puts its label at the first decoded
position, so one forward pass gives the label distribution (see scoring.py). Two inputs are converted:

- records with a CoT (``taosr1 cot`` output) -> chat rows ``{"id", "messages": [system, user, assistant]}``
  whose system prompt asks for the answer first and whose assistant turn is the answer-first response
  (for trainers that read chat messages, e.g. OpenRLHF's SFT with ``--apply_chat_template``);
- any JSONL whose rows hold responses (``chosen``/``rejected`` of DPO pairs, ``response``): each
  think-then-answer response is reordered; a malformed one is left as it is and counted.

The LLaMA-Factory export renders answer-first directly (``taosr1 export llamafactory --format answer_first``),
and the pipeline does so for every stage when the config says ``format: answer_first``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from taosr1_plugins.errors import DataError, UnknownPluginError
from taosr1_plugins.core.formats import ResponseFormat, parse_response, render_response
from taosr1_plugins.core.jsonl import iter_numbered_jsonl, write_jsonl
from taosr1_plugins.core.prompts import build_messages
from taosr1_plugins.core.jsonl import iter_jsonl_objects
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, SchemeError, get_scheme, scheme_of

RESPONSE_FIELDS = ("chosen", "rejected", "response")


def to_answer_first(text: str, scheme: LabelScheme) -> str | None:
    """A well-formed think-then-answer (or already answer-first) response in answer-first form, else None."""
    parsed = parse_response(text, scheme)
    if not parsed.format_ok or parsed.label is None:
        return None
    return render_response(parsed.reasoning, parsed.label, scheme, ResponseFormat.ANSWER_FIRST)


def answer_first_messages(record: Record, scheme: LabelScheme) -> list[dict[str, str]]:
    if record.label is None or not record.cot:
        raise ValueError(f"record {record.id!r} needs a label and a cot")
    messages = build_messages(record, scheme, ResponseFormat.ANSWER_FIRST)
    messages.append({"role": "assistant",
                     "content": render_response(record.cot, record.label, scheme, ResponseFormat.ANSWER_FIRST)})
    return messages


@dataclass
class ConversionReport:
    rows: int = 0
    converted: int = 0
    kept_as_is: int = 0  # responses that did not parse; left unchanged
    already_answer_first: int = 0  # well-formed responses that needed no reordering
    rows_without_responses: int = 0  # rows with none of the response fields (as text)
    first_malformed: str | None = None  # "line N, field F", to look at

    def nothing_reordered(self, fields: Sequence[str] = RESPONSE_FIELDS) -> str | None:
        """A warning when a responses run reordered no response, naming why; None when it reordered some.

        It exits 0 and writes its output either way, so a file of records (no response fields), a file already
        answer-first or one whose responses never parse would pass unnoticed into training."""
        if self.converted or not self.rows:
            return None
        causes = []
        if self.rows_without_responses:
            causes.append(f"{self.rows_without_responses} rows hold none of the fields {', '.join(fields)} "
                          "(records with a cot convert without --responses)")
        if self.already_answer_first:
            causes.append(f"{self.already_answer_first} responses are already answer-first")
        if self.kept_as_is:
            causes.append(f"{self.kept_as_is} responses are not well-formed think-then-answer responses of the "
                          f"scheme (the first at {self.first_malformed}; is --scheme the responses' own?)")
        return f"post-cot reordered nothing in {self.rows} rows: " + "; ".join(causes)


def convert_records(data: str | Path, out: str | Path) -> ConversionReport:
    """Records with label and cot -> answer-first chat rows; a record without either is a DataError."""
    report = ConversionReport()
    schemes: dict[str, LabelScheme] = {}

    def rows() -> Iterable[dict]:
        for lineno, record in iter_numbered_jsonl(data, Record):
            if record.scheme not in schemes:
                try:
                    schemes[record.scheme] = scheme_of(record)
                except (UnknownPluginError, SchemeError) as exc:  # the record's fault: located in the file
                    raise DataError(str(data), lineno, "scheme", str(exc)) from exc
            scheme = schemes[record.scheme]
            for name in ("label", "cot"):
                if not getattr(record, name):
                    raise DataError(str(data), lineno, name, f"record {record.id!r} has no {name}")
            report.rows += 1
            report.converted += 1
            yield {"id": record.id, "scheme": record.scheme, "messages": answer_first_messages(record, scheme)}

    write_jsonl(out, rows())
    return report


def convert_responses(data: str | Path, out: str | Path, scheme: LabelScheme | str,
                      fields: Sequence[str] = RESPONSE_FIELDS) -> ConversionReport:
    """Reorder every think-then-answer response in ``fields`` of each JSON row to answer-first."""
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    report = ConversionReport()

    def rows() -> Iterable[dict]:
        for lineno, row in iter_jsonl_objects(data):
            report.rows += 1
            present = [name for name in fields if isinstance(row.get(name), str)]
            report.rows_without_responses += not present
            for name in present:
                if parse_response(row[name], scheme, ResponseFormat.ANSWER_FIRST).format_ok:
                    report.already_answer_first += 1
                    continue
                converted = to_answer_first(row[name], scheme)
                if converted is None:
                    report.kept_as_is += 1
                    report.first_malformed = report.first_malformed or f"line {lineno}, field '{name}'"
                else:
                    row[name] = converted
                    report.converted += 1
            yield row

    write_jsonl(out, rows())
    return report
