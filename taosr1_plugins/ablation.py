"""`taosr1 report RUN_DIR`: the ablation table of a run, baselines and TaoSR1 stages side by side.

Rows, all on the run's test split:
- every baseline under ``baselines/`` (`taosr1 baselines CONFIG`);
- SFT-CoT, +DPO, +GRPO: each stage's model's label probabilities from the deploy stage (one forward pass
  after ``<answer>``), decided by argmax; with the answer-first format this is the label the model
  decodes first;
- +CumPT: the final model's probabilities decided by the CumPT thresholds fitted on dev.
Columns: macro-F1, accuracy, QWK, per-level F1, training pairs, wall seconds, and, where the eval stage
generated responses for that model, its valid-format rate. Written as JSON, Markdown and a PNG plot under
``RUN_DIR/report/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .baselines import BASELINES
from .errors import DataError
from .evaluation import Metrics
from .jsonl import atomic_write, read_jsonl
from .records import Record
from .schemes import LabelScheme, get_scheme



@dataclass
class AblationRow:
    name: str
    kind: str  # "baseline" or "taosr1"
    metrics: Metrics
    train_pairs: int | None = None
    seconds: float | None = None
    generation_format_ok: float | None = None


@dataclass
class Ablation:
    run_dir: Path
    scheme: LabelScheme
    test_pairs: int
    rows: list[AblationRow]
    stage_seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "scheme": self.scheme.name,
            "test_pairs": self.test_pairs,
            "rows": [{**asdict(row), "metrics": row.metrics.to_dict()} for row in self.rows],
            "stage_seconds": self.stage_seconds,
        }


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(str(path), None, None, f"cannot read: {exc}") from exc


def _capped(count: Any, cap: Any) -> int | None:
    if not isinstance(count, int):
        return None
    return min(count, cap) if isinstance(cap, int) else count


def collect_ablation(run_dir: str | Path) -> Ablation:
    from .calibration import load_cumpt
    from .pipeline.stages import TRAINED_MODELS
    from .report import evaluate_scores
    from .scoring import read_scores

    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise DataError(str(manifest_path), None, None, "no manifest: is this a `taosr1 run` directory?")
    manifest = _json(manifest_path)
    stages, config = manifest.get("stages", {}), manifest.get("config", {})
    test = read_jsonl(run_dir / "data" / "test.jsonl", Record)
    if not test:
        raise DataError(str(run_dir / "data" / "test.jsonl"), None, None, "no test pairs")
    scheme = get_scheme(test[0].scheme)
    test_ids = sorted(record.id for record in test)

    rows: list[AblationRow] = []
    for name in BASELINES:
        path = run_dir / "baselines" / name / "result.json"
        if path.exists():
            result = _json(path)
            rows.append(
                AblationRow(result["label"], "baseline", Metrics(**result["metrics"]),
                            result.get("details", {}).get("train_pairs"), result.get("seconds"))
            )

    generation = _json(run_dir / "eval" / "metrics.json") if (run_dir / "eval" / "metrics.json").exists() else {}
    train_pairs = {
        "sft": _capped(stages.get("export", {}).get("outputs", {}).get("records"),
                       config.get("sft", {}).get("overrides", {}).get("max_samples")),
        "dpo": _capped(stages.get("pairs", {}).get("outputs", {}).get("pairs"),
                       config.get("dpo", {}).get("overrides", {}).get("max_samples")),
    }
    scored = {}
    for stage, label in TRAINED_MODELS:
        path = run_dir / "deploy" / f"test_scores_{stage}.jsonl"
        if not path.exists():
            continue
        scores = read_scores(path, require_gold=True)
        if sorted(row.id for row in scores.rows) != test_ids:
            raise DataError(str(path), None, "id", "scores do not cover the run's test split; re-run the deploy stage")
        scored[stage] = scores
        gen = generation.get(label, {}).get("format_ok_rate")
        rows.append(
            AblationRow(label, "taosr1", evaluate_scores(scores, None).metrics, train_pairs.get(stage),
                        stages.get(stage, {}).get("seconds"), gen)
        )
    # CumPT thresholds belong to the model they were fitted on (the deploy stage's final model), and only a
    # finished deploy stage has both its thresholds and that model's test scores
    deploy = stages.get("deploy", {})
    cumpt_path = run_dir / "deploy" / "cumpt.json"
    final = deploy.get("outputs", {}).get("model")
    if deploy.get("status") == "done" and cumpt_path.exists() and final in scored:
        rows.append(
            AblationRow("+CumPT", "taosr1", evaluate_scores(scored[final], load_cumpt(cumpt_path)).metrics,
                        seconds=deploy.get("seconds"))
        )
    for row in rows:
        if row.metrics.n != len(test):
            raise DataError(None, None, None, f"{row.name!r} was evaluated on {row.metrics.n} pairs, the test split has {len(test)}")
    stage_seconds = {name: entry["seconds"] for name, entry in stages.items() if entry.get("seconds") is not None}
    return Ablation(run_dir, scheme, len(test), rows, stage_seconds)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or value != value else format(value, spec)


def markdown_table(ablation: Ablation) -> str:
    levels = ablation.scheme.levels
    header = ["method", "train pairs", "macro-F1", "accuracy", "QWK", *(f"F1 {level.token}" for level in levels),
              "valid format (gen.)", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ablation.rows:
        m = row.metrics
        cells = [row.name, _fmt(row.train_pairs, "d"), _fmt(m.macro_f1), _fmt(m.accuracy), _fmt(m.qwk),
                 *(_fmt(m.per_level[level.key]["f1"]) for level in levels), _fmt(row.generation_format_ok, ".0%"),
                 _fmt(row.seconds, ".0f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seconds_table(ablation: Ablation) -> str:
    lines = ["| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in ablation.stage_seconds.items()]
    lines.append(f"| total | {sum(ablation.stage_seconds.values()):.0f} |")
    return "\n".join(lines) + "\n"


def plot_ablation(ablation: Ablation, out: Path) -> Path:
    from .report import pyplot

    plt = pyplot()
    names = [row.name for row in ablation.rows]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    y = list(range(len(names)))
    colours = ["#999999" if row.kind == "baseline" else "#1f77b4" for row in ablation.rows]
    ax.barh([i + 0.2 for i in y], [row.metrics.macro_f1 for row in ablation.rows], height=0.4, color=colours, label="macro-F1")
    ax.barh([i - 0.2 for i in y], [row.metrics.qwk for row in ablation.rows], height=0.4, color=colours, alpha=0.45, label="QWK")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(f"on {ablation.test_pairs} test pairs (grey: baselines, blue: TaoSR1 stages; light: QWK)")
    ax.set_title(f"{ablation.run_dir.name}: macro-F1 and QWK")
    fig.tight_layout()
    with atomic_write(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return out


def write_ablation(run_dir: str | Path, out_dir: str | Path | None = None) -> tuple[Ablation, dict[str, Path]]:
    ablation = collect_ablation(run_dir)
    if not ablation.rows:
        raise DataError(str(run_dir), None, None, "nothing to report: run `taosr1 run` and/or `taosr1 baselines` first")
    out = Path(out_dir) if out_dir else ablation.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "ablation.json", "markdown": out / "ablation.md", "plot": out / "ablation.png"}
    with atomic_write(paths["json"]) as fh:
        json.dump(ablation.to_dict(), fh, indent=2)
    with atomic_write(paths["markdown"]) as fh:
        fh.write(f"## {ablation.run_dir.name}: {ablation.test_pairs} test pairs, scheme {ablation.scheme.name}\n\n")
        fh.write(markdown_table(ablation) + "\nWall time per stage of the main job:\n\n" + seconds_table(ablation))
    plot_ablation(ablation, paths["plot"])
    return ablation, paths
