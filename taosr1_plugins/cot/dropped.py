"""Why a CoT run kept nothing, from its ledger (generate.py writes one row per record, with a dropped record's
reason and its last response).

A run that kept no trace still exits 0 and writes an empty file; the export after it would then fail on "no
records", far from the cause. The ledger holds the cause: the reasons, counted, and one response to look at.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

SHOWN_REASONS = 3
SHOWN_RESPONSE_CHARS = 160


def nothing_kept(report: dict[str, Any], ledger: Path) -> str | None:
    """A warning when the run of ``report`` (CotReport.to_dict) kept none of its records, else None."""
    if not report.get("total") or report.get("kept"):
        return None
    rows = _dropped_rows(ledger)
    reasons = Counter(row.get("why", "unknown") for row in rows)
    counted = "; ".join(f"{count}x {why}" for why, count in reasons.most_common(SHOWN_REASONS))
    text = f"CoT kept 0 of {report['total']} traces (teacher {report.get('teacher')}): dropped {counted or 'all'}"
    if rows:
        first = rows[0]
        response = " ".join(str(first.get("last_response", "")).split())
        if len(response) > SHOWN_RESPONSE_CHARS:
            response = response[:SHOWN_RESPONSE_CHARS] + "…"
        text += f"; the first, {first.get('id')}, answered {json.dumps(response, ensure_ascii=False)}"
    return text + f"; every reason: {ledger}"


def _dropped_rows(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.is_file():
        return []
    rows = []
    with open(ledger, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a report of a failure must not fail on a torn line
                continue
            if isinstance(row, dict) and row.get("outcome") == "dropped":
                rows.append(row)
    return rows
