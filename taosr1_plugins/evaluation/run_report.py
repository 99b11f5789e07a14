"""The one report of a `taosr1 run` directory: ``RUN_DIR/report/report.html``, one self-contained page.

Written by `taosr1 report RUN_DIR` and by the deploy stage (the same function, ablation.write_ablation), it
holds, on the run's test split:

- warnings first: calibration that lowered macro-F1, a ranking view that covers no query (and why), stages
  that decided exactly as the one before them, and what the manifest recorded as a stage's warning;
- the ablation table (baselines and TaoSR1 stages), its plot, the 95% intervals and paired differences
  (intervals.py), tier stability and wall time per stage;
- reliability, precision/recall trade-off and F1-per-stage plots, and GRPO's training curves;
- per-stage metrics (per level, confusion, tag slices), stages whose decisions are identical shown once;
- the worst errors of the final row (query, item, gold, predicted, probabilities, the model's explanation
  where the eval stage generated one), filterable by gold level, predicted level and tag with a few lines
  of inline JavaScript; the filter also reads the URL hash (``report.html#level=E&tag=negation``);
- run metadata: date, command, seed, model, package versions, the machine (CPU, AVX512-BF16/AMX) and the
  config, from ``manifest.json``.

Paths on the page are relative to the run directory: the page does not name the machine's directories.
Plots are base64 PNGs and the script is inline, so the file opens anywhere, offline.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.core.jsonl import iter_jsonl_objects
from taosr1_plugins.evaluation.ablation import (
    Ablation,
    notes,
    ranking_queries,
    why_no_ranking,
)
from taosr1_plugins.evaluation.report import (
    STYLE,
    _img,
    _stage_section,
    plot_f1_per_stage,
    plot_grpo_curves,
    plot_reliability,
    plot_tradeoff,
)

ERRORS_PER_LEVEL = 25  # worst errors kept per gold level, so filtering by a rare level still shows some
EXTRA_STYLE = (
    "<style>.warnings li{color:#8a4b00}.warnings{background:#fff6e0;border:1px solid #e0b050;padding:.5em 2em}"
    "tr.baseline td{color:#555}td.text{text-align:left;max-width:28em}pre{background:#f6f6f6;padding:.5em;"
    "overflow:auto;max-height:30em}table.ablation td:first-child{text-align:left;white-space:nowrap}nav a{margin-right:1em}.filters label{margin-right:1.5em}</style>"
)
# an absolute path inside a string (not the tail of a URL or of a relative path)
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])/(?:[\w.+@-]+/)*[\w.+@-]+")

FILTER_SCRIPT = """<script>
(function () {
  var table = document.getElementById('errors');
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var keys = ['level', 'predicted', 'tag'];
  function params() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) { out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1)); }
    });
    return out;
  }
  function apply() {
    var p = params(), shown = 0;
    keys.forEach(function (k) { var s = document.getElementById('filter-' + k); if (s) { s.value = p[k] || ''; } });
    rows.forEach(function (tr) {
      var tags = tr.getAttribute('data-tags');
      var ok = (!p.level || tr.getAttribute('data-level') === p.level) &&
               (!p.predicted || tr.getAttribute('data-predicted') === p.predicted) &&
               (!p.tag || (p.tag === 'none' ? tags === '' : (' ' + tags + ' ').indexOf(' ' + p.tag + ' ') >= 0));
      if (ok) { tr.removeAttribute('hidden'); shown++; } else { tr.setAttribute('hidden', ''); }
    });
    document.getElementById('errors-shown').textContent = shown;
  }
  keys.forEach(function (k) {
    var s = document.getElementById('filter-' + k);
    if (s) {
      s.addEventListener('change', function () {
        var parts = [];
        keys.forEach(function (key) {
          var v = document.getElementById('filter-' + key).value;
          if (v) { parts.push(encodeURIComponent(key) + '=' + encodeURIComponent(v)); }
        });
        history.replaceState(null, '', '#' + parts.join('&'));
        apply();
      });
    }
  });
  window.addEventListener('hashchange', apply);
  apply();
})();
</script>"""


def relative(value: Any, run_dir: Path) -> Any:
    """``value`` (a string, or lists and dicts of them) with every absolute path made relative to the run directory."""
    base = os.path.abspath(run_dir)
    if isinstance(value, str):
        return _ABSOLUTE.sub(lambda m: os.path.relpath(m.group(0), base), value)
    if isinstance(value, Mapping):
        return {k: relative(v, run_dir) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative(v, run_dir) for v in value]
    return value


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _rows_table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str, row_classes: Sequence[str] | None = None,
                text_columns: Sequence[int] = ()) -> str:
    """A table of already formatted cells (escaped here)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = []
    for i, row in enumerate(rows):
        attr = f' class="{row_classes[i]}"' if row_classes else ""
        cells = "".join(f'<td class="text">{_esc(c)}</td>' if j in text_columns else f"<td>{_esc(c)}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{attr}>{cells}</tr>")
    return f'<table class="{cls}">{thead}<tbody>{"".join(body)}</tbody></table>'


# --- warnings ------------------------------------------------------------------------------------------------


def identical_groups(ablation: Ablation) -> list[list[str]]:
    """TaoSR1 rows grouped by identical decisions on every test pair, in table order."""
    groups: list[tuple[dict[str, str], list[str]]] = []
    for name, result in ablation.results.items():
        decisions = {row.id: label for row, label in zip(result.scores.labelled, result.predicted)}
        for seen, names in groups:
            if seen == decisions:
                names.append(name)
                break
        else:
            groups.append((decisions, [name]))
    return [names for _, names in groups]


def report_warnings(ablation: Ablation) -> list[str]:
    out = []
    for row in ablation.rows:
        if row.macro_f1_uncalibrated is not None and row.metrics.macro_f1 < row.macro_f1_uncalibrated - 1e-12:
            method = getattr(getattr(ablation.cumpt, "calibration", None), "method", "the")
            out.append(f"Calibration lowered macro-F1 on test: {row.name} uncalibrated {row.macro_f1_uncalibrated:.3f} "
                       f"→ calibrated {row.metrics.macro_f1:.3f} (CumPT thresholds fitted on dev with and without the "
                       f"{method} calibration). The calibration improves probabilities (ECE), not necessarily "
                       "decisions; `deploy.calibration: none` keeps the raw distribution.")
    if any(row.ranking is not None for row in ablation.rows) and ranking_queries(ablation) == 0:
        out.append(f"The ranking view (NDCG) covers no query: {why_no_ranking(ablation)}.")
    for names in identical_groups(ablation):
        if len(names) > 1:
            out.append(f"{' and '.join(names)} made identical decisions on all {ablation.test_pairs} test pairs "
                       "(a stage that changed no decision); their per-stage metrics are shown once.")
    stages = ablation.manifest.get("stages", {})
    for name, entry in stages.items():
        for warning in entry.get("warnings") or []:
            out.append(f"{name} stage: {warning}")
        status = entry.get("status")
        if status == "running":
            out.append(f"{name} stage: not finished when this report was written (status: running)")
        elif status not in (None, "done"):
            error = f": {entry['error']}" if entry.get("error") else ""
            out.append(f"{name} stage: {status}{error}")
    if "+CumPT" not in ablation.results and ablation.results:
        out.append("No +CumPT row: the deploy stage has not finished (or its cumpt.json is missing), so the table "
                   "has no thresholds and calibration to show.")
    return [relative(w, ablation.run_dir) for w in out]


# --- sections ------------------------------------------------------------------------------------------------


def _ablation_section(ablation: Ablation) -> str:
    from taosr1_plugins.evaluation.ablation import plot_ablation

    levels = ablation.scheme.levels
    header = ["method", "train pairs", "macro-F1", "macro-F1 uncalibrated", "accuracy", "QWK",
              *(f"F1 {level.token}" for level in levels), "NDCG@10", "NDCG", "over-recall", "ECE", "ECE calibrated",
              "valid format (gen.)", "seconds"]
    rows = []
    for row in ablation.rows:
        m, r = row.metrics, row.ranking
        rows.append([row.name, _fmt(row.train_pairs, "d"), _fmt(m.macro_f1), _fmt(row.macro_f1_uncalibrated),
                     _fmt(m.accuracy), _fmt(m.qwk), *(_fmt(m.per_level[level.key]["f1"]) for level in levels),
                     _fmt(r.ndcg_at_10 if r else None), _fmt(r.ndcg if r else None), _fmt(row.over_recall),
                     _fmt(row.ece), _fmt(row.ece_calibrated), _fmt(row.generation_format_ok, ".0%"),
                     _fmt(row.seconds, ".0f")])
    parts = ['<h2 id="ablation">Ablation table</h2>',
             (f"<p>{ablation.test_pairs} test pairs; grey rows are baselines. Stage rows: the model's label "
             "probabilities after <code>&lt;answer&gt;</code>, argmax; +CumPT: the final model with the thresholds "
             "(and calibration) fitted on dev.</p>"),
             _rows_table(header, rows, "ablation", [row.kind for row in ablation.rows]),
             f"<p>{_esc(notes(ablation))}</p>",
             _img("ablation", plot_ablation(ablation), "macro-F1 and QWK per row")]
    boot = ablation.bootstrap
    if boot is not None:
        def cell(i) -> str:
            return f"{i.value:.3f} [{i.low:.3f}, {i.high:.3f}]"

        def signed(i) -> str:
            return f"{i.value:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"

        parts.append('<h3 id="intervals">How sure each row is</h3>')
        parts.append(f"<p>95% intervals from {boot.resamples} bootstrap draws of the {boot.queries} test queries (every "
                     "pair of a drawn query, every row on the same draws, so differences are paired). A change adds "
                     "only where its interval excludes 0.</p>")
        parts.append(_rows_table(["method", "macro-F1 [95% CI]", "QWK [95% CI]"],
                                 [[name, cell(m["macro_f1"]), cell(m["qwk"])] for name, m in boot.rows.items()],
                                 "intervals"))
        if boot.differences:
            parts.append(_rows_table(["change", "Δ macro-F1 [95% CI]", "Δ QWK [95% CI]", "macro-F1 says"],
                                     [[f"{d.first} → {d.second}", signed(d.metrics["macro_f1"]), signed(d.metrics["qwk"]),
                                       d.verdict] for d in boot.differences], "differences", text_columns=(3,)))
    if ablation.stability:
        parts.append("<h3>Tier stability on test</h3><p>The same rule for both checkpoints; CumPT: the deployed "
                     "thresholds and calibration.</p>")
        parts.append(_rows_table(["from", "to", "pairs", "tier changed (argmax)", "tier changed (CumPT)"],
                                 [[t.first, t.second, str(t.n), f"{t.argmax_changed} ({t.argmax_share:.1%})",
                                   "-" if t.cumpt_changed is None else f"{t.cumpt_changed} ({t.cumpt_share:.1%})"]
                                  for t in ablation.stability], "stability"))
    if ablation.stage_seconds:
        parts.append("<h3>Wall time per stage</h3>")
        seconds = [[name, f"{s:.0f}"] for name, s in ablation.stage_seconds.items()]
        parts.append(_rows_table(["stage", "seconds"], [*seconds, ["total", f"{sum(ablation.stage_seconds.values()):.0f}"]],
                                 "seconds"))
    return "\n".join(parts)


def _grpo_history(ablation: Ablation) -> list[dict[str, Any]]:
    path = ablation.run_dir / "grpo" / "metrics.jsonl"
    grpo = ablation.manifest.get("config", {}).get("grpo", {})
    if not path.exists() or grpo.get("enabled") is False:
        return []
    return [row for _, row in iter_jsonl_objects(path)]


def _plots_section(ablation: Ablation) -> str:
    results = list(ablation.results.values())
    parts = []
    if results:
        parts.append('<h2 id="plots">Calibration and shown/hidden trade-off</h2>')
        parts.append(_img("reliability", plot_reliability(results), "reliability diagram"))
        if ablation.cumpt is not None and ablation.cumpt.calibration is not None and "+CumPT" in ablation.results:
            parts.append(_img("reliability_calibrated", plot_reliability([ablation.results["+CumPT"]], calibrated=True),
                              "reliability diagram after calibration"))
        parts.append(_img("tradeoff", plot_tradeoff(results), "precision/recall trade-off of shown tiers"))
        if len(results) > 1:
            parts.append(_img("f1_per_stage", plot_f1_per_stage(results), "F1 per stage"))
    history = _grpo_history(ablation)
    if history:
        parts.append(f'<h2 id="grpo">GRPO training, per logged step ({len(history)})</h2>')
        parts.append(_img("grpo_curves", plot_grpo_curves(history), "GRPO reward, accuracy, KL and zero-variance groups per step"))
    return "\n".join(parts)


def _stages_section(ablation: Ablation) -> str:
    if not ablation.results:
        return ""
    parts = ['<h2 id="stages">Per stage</h2>']
    for names in identical_groups(ablation):
        result = ablation.results[names[0]]
        source = relative(str(result.scores.path), ablation.run_dir)
        note = "" if len(names) == 1 else (f" <strong>Shown once for {_esc(', '.join(names))}</strong>: identical "
                                           f"decisions on every pair.")
        section = _stage_section(result, title=" = ".join(names), source=source, note=note)
        parts.append(f'<section class="stage" data-stages="{_esc("|".join(names))}">{section}</section>')
    return "\n".join(parts)


def _explanations(ablation: Ablation, stage: str | None) -> dict[str, str]:
    """id -> the model's own reasoning for the final stage's model, where the eval stage generated responses."""
    if stage is None:
        return {}
    path = ablation.run_dir / "eval" / f"predictions_{stage}.jsonl"
    if not path.exists():
        return {}
    return {row["id"]: row["response"] for _, row in iter_jsonl_objects(path)
            if isinstance(row.get("id"), str) and isinstance(row.get("response"), str)}


def worst_errors(ablation: Ablation) -> tuple[str, list[dict[str, Any]]]:
    """The final row's errors, worst first (furthest level from gold, then least probability on gold), at most
    ERRORS_PER_LEVEL per gold level."""
    if not ablation.results:
        return "", []
    name = list(ablation.results)[-1]
    result = ablation.results[name]
    keys = result.scores.scheme.keys
    records = {record.id: record for record in ablation.test}
    labels = {label: stage for stage, label in ablation.trained}
    stage = ablation.final if name == "+CumPT" else labels.get(name)
    explained = _explanations(ablation, stage)
    errors = []
    for row, predicted, probs in zip(result.scores.labelled, result.predicted, result.decision_probs):
        if predicted == row.gold:
            continue
        record = records.get(row.id)
        gold, pred = keys.index(row.gold), keys.index(predicted)
        errors.append({
            "id": row.id, "query": row.query or (record.query if record else ""),
            "item": record.item.title if record else "",
            "description": (record.item.description or "")[:300] if record else "",
            "gold": row.gold, "predicted": predicted, "probs": dict(zip(keys, probs)),
            "tags": list(row.tags or (record.tags if record else [])),
            "explanation": row.explanation or explained.get(row.id),
            "distance": abs(gold - pred), "p_gold": probs[gold],
        })
    errors.sort(key=lambda e: (-e["distance"], e["p_gold"], e["id"]))
    kept, per_level = [], {}
    for error in errors:
        if per_level.get(error["gold"], 0) < ERRORS_PER_LEVEL:
            per_level[error["gold"]] = per_level.get(error["gold"], 0) + 1
            kept.append(error)
    return name, kept


def _errors_section(ablation: Ablation) -> str:
    name, errors = worst_errors(ablation)
    if not name:
        return ""
    keys = ablation.scheme.keys
    result = ablation.results[name]
    total = sum(1 for row, p in zip(result.scores.labelled, result.predicted) if p != row.gold)
    prob_kind = "calibrated " if result.decision == "cumpt" and ablation.cumpt is not None and ablation.cumpt.calibration else ""
    parts = ['<h2 id="errors-drilldown">Worst errors</h2>',
             (f"<p>{_esc(name)} got {total} of {result.metrics.n} test pairs wrong; shown: the worst (furthest level "
             f"from gold, then least {prob_kind}probability on gold), at most {ERRORS_PER_LEVEL} per gold level. "
             "Explanations: the model's response where the eval stage generated one for that pair.</p>")]
    tags = sorted({tag for e in errors for tag in e["tags"]})

    def select(key: str, label: str, options: Sequence[tuple[str, str]]) -> str:
        opts = "".join(f'<option value="{_esc(v)}">{_esc(t)}</option>' for v, t in [("", "all"), *options])
        return f'<label>{label} <select id="filter-{key}">{opts}</select></label>'

    parts.append('<p class="filters">' + select("level", "gold level", [(k, k) for k in keys])
                 + select("predicted", "predicted", [(k, k) for k in keys])
                 + select("tag", "tag", [*((t, t) for t in tags), ("none", "(no tag)")])
                 + f' shown: <span id="errors-shown">{len(errors)}</span> of {len(errors)}</p>')
    head = "".join(f"<th>{_esc(h)}</th>" for h in ["#", "query", "item", "gold", "predicted",
                                                    *(f"p({k})" for k in keys), "tags", "explanation"])
    body = []
    for i, e in enumerate(errors, 1):
        item = _esc(e["item"]) + (f'<br><small>{_esc(e["description"])}</small>' if e["description"] else "")
        probs = "".join(f"<td><b>{e['probs'][k]:.3f}</b></td>" if k == e["gold"] else f"<td>{e['probs'][k]:.3f}</td>"
                        for k in keys)  # the gold level's in bold
        explanation = f"<pre>{_esc(e['explanation'])}</pre>" if e["explanation"] else "-"
        body.append(f'<tr class="error" data-id="{_esc(e["id"])}" data-level="{_esc(e["gold"])}" '
                    f'data-predicted="{_esc(e["predicted"])}" data-tags="{_esc(" ".join(e["tags"]))}">'
                    f'<td>{i}</td><td class="text">{_esc(e["query"])}</td><td class="text">{item}</td>'
                    f'<td>{_esc(e["gold"])}</td><td>{_esc(e["predicted"])}</td>{probs}'
                    f'<td class="text">{_esc(", ".join(e["tags"]) or "-")}</td><td class="text">{explanation}</td></tr>')
    parts.append(f'<table id="errors" class="errors"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
    return "\n".join(parts)


def _machine_text(machine: Mapping[str, Any]) -> str:
    def yes(value: Any) -> str:
        return "unknown" if value is None else ("yes" if value else "no")

    return (f"{machine.get('cpu') or 'unknown CPU'} × {machine.get('cpu_count') or '?'} ({machine.get('machine', '?')}, "
            f"{machine.get('system', '?')}); AVX512-BF16: {yes(machine.get('avx512_bf16'))}, "
            f"AMX-BF16: {yes(machine.get('amx_bf16'))}")


def _metadata_section(ablation: Ablation) -> str:
    from taosr1_plugins.core.machine import machine

    manifest = relative(ablation.manifest, ablation.run_dir)
    config = manifest.get("config", {})
    stages = manifest.get("stages", {})
    model = config.get("model", {}).get("base", "-") if isinstance(config.get("model"), dict) else "-"
    deployed = ablation.final if "+CumPT" in ablation.results else None
    rows = [
        ["run", ablation.run_dir.name],
        ["report written", time.strftime("%Y-%m-%d %H:%M:%S %Z")],
        ["run started", manifest.get("started_at") or "not recorded"],
        ["command", " ".join(map(str, manifest.get("argv") or [])) or "not recorded"],
        ["seed", manifest.get("seed", "-")],
        ["scheme", ablation.scheme.name],
        ["base model", model],
        ["deployed stage", deployed or "-"],
        ["response format", config.get("format", "-")],
    ]
    if manifest.get("machine"):
        rows.append(["machine (of the run)", _machine_text(manifest["machine"])])
    else:
        rows.append(["machine (of the run)", "not recorded in manifest.json (a run started before it was)"])
        rows.append(["machine (writing this report)", _machine_text(machine())])
    parts = ['<h2 id="metadata">Run</h2>', _rows_table(["", ""], [[k, str(v)] for k, v in rows], "metadata", text_columns=(1,))]
    versions = manifest.get("versions") or {}
    if versions:
        parts.append("<h3>Package versions</h3>")
        parts.append(_rows_table(["package", "version"], [[k, v or "not installed"] for k, v in versions.items()], "versions"))
    if stages:
        parts.append("<h3>Stages</h3>")
        parts.append(_rows_table(["stage", "status", "seconds", "finished"],
                                 [[name, e.get("status", "-"), _fmt(e.get("seconds"), ".1f"), e.get("updated_at", "-")]
                                  for name, e in stages.items()], "stages"))
    if config:
        parts.append("<details><summary>Config (as the run resolved it)</summary>"
                     f"<pre>{_esc(json.dumps(config, indent=2, default=str))}</pre></details>")
    return "\n".join(parts)


def render_run_report(ablation: Ablation, out_dir: Path | None = None) -> str:
    """The page; ``out_dir`` is where it will be written (only for the note that names it)."""
    title = f"taosr1 report: {ablation.run_dir.name}"
    warnings = report_warnings(ablation)
    queries = len({record.query for record in ablation.test})
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>", STYLE, EXTRA_STYLE,
        "</head><body>",
        f"<h1>{_esc(title)}</h1>",
        (f"<p>{ablation.test_pairs} test pairs over {queries} queries, scheme {_esc(ablation.scheme.name)}; over-recall "
        f"counts {_esc(', '.join(ablation.irrelevant))} as irrelevant. Written by <code>taosr1 report</code> (and by the "
        "deploy stage): one page, nothing loaded from elsewhere.</p>"),
        ('<nav><a href="#ablation">ablation</a><a href="#plots">plots</a><a href="#stages">per stage</a>'
        '<a href="#errors-drilldown">worst errors</a><a href="#metadata">run</a></nav>'),
    ]
    if warnings:
        parts.append('<h2 id="warnings">Warnings</h2><ul class="warnings">'
                     + "".join(f"<li>{_esc(w)}</li>" for w in warnings) + "</ul>")
    parts += [_ablation_section(ablation), _plots_section(ablation), _stages_section(ablation),
              _errors_section(ablation), _metadata_section(ablation), FILTER_SCRIPT, "</body></html>"]
    document = "\n".join(p for p in parts if p)
    # the last guard for paths the sections did not make relative (an error message quoting a file, ...)
    for base in {os.path.abspath(ablation.run_dir), os.path.realpath(ablation.run_dir)}:
        document = document.replace(base + os.sep, "").replace(base, ".")
    return document
