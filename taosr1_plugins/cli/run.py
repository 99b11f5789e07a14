"""`taosr1 run CONFIG`: the main job."""

from __future__ import annotations

from pathlib import Path

import typer


def _overrides(items: list[str]) -> dict:
    import yaml

    from taosr1_plugins.core import yaml_load

    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not all(key.split(".")):
            raise typer.BadParameter(f"--set takes KEY=VALUE (KEY like eval.limit), got {item!r}", param_hint="--set")
        try:
            overrides[key] = yaml_load.safe_load(value)
        except yaml.YAMLError as exc:
            raise typer.BadParameter(f"{item!r}: the value is not valid YAML ({getattr(exc, 'problem', None) or exc})", param_hint="--set") from None
    return overrides


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Run config YAML (see configs/)."),
        from_stage: str = typer.Option(None, "--from", help="Re-run from this stage on, even if unchanged."),
        until_stage: str = typer.Option(None, "--until", help="Stop after this stage."),
        set_: list[str] = typer.Option([], "--set", help="Override a config value: --set eval.limit=10"),
        check: bool = typer.Option(
            False, "--check", help="Only check the config (every file, plugin and framework setting the stages up "
            "to --until need) and stop; nothing is written."
        ),
        strict: bool = typer.Option(
            False, "--strict", help="Stop (exit 2) after a stage that finished with a warning: an empty dev or test "
            "split, a CoT stage that kept no trace, a GRPO stage that did not move the policy."
        ),
        quiet: bool = typer.Option(
            False, "--quiet", "-q", help="Print only warnings, errors and the final line (the stages' own output, "
            "bars and tables go to /dev/null)."
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print the run's summary as JSON on stdout (each stage: status, seconds, outputs, "
            "warnings); everything for people goes to stderr."
        ),
    ) -> None:
        """Run every stage: import → split → CoT → SFT → pass@N → DPO → GRPO → evaluation → deployment."""
        from taosr1_plugins.pipeline.config import load_config
        from taosr1_plugins.pipeline.runner import STAGE_NAMES, preflight, run_pipeline

        for name in (from_stage, until_stage):
            if name is not None and name not in STAGE_NAMES:
                raise typer.BadParameter(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
        run_config = load_config(config, _overrides(set_))
        if check:
            stages = preflight(run_config, until_stage=until_stage, source=str(config))
            typer.echo(f"{config}: ready to run {stages[0]} … {stages[-1]}; run directory {Path(run_config.run_dir).resolve()}")
            return
        import json

        from taosr1_plugins.pipeline.progress import run_output

        with run_output(quiet=quiet, as_json=as_json) as (output, stdout):
            manifest = run_pipeline(run_config, from_stage=from_stage, until_stage=until_stage, source=str(config),
                                    strict=strict, output=output)
            run_dir = manifest.path.parent
            output.final(output.final_line(run_dir))
            if as_json:
                stdout.write(json.dumps(output.summary(run_dir), indent=2, default=str, ensure_ascii=False) + "\n")
                stdout.flush()

    @app.command("baselines")
    def baselines(
        config: Path = typer.Argument(..., exists=True, dir_okay=False, help="The run config YAML of `taosr1 run`."),
        only: list[str] = typer.Option([], "--only", help="Run only this baseline (repeatable)."),
        force: bool = typer.Option(False, "--force", help="Re-run baselines even when unchanged."),
        set_: list[str] = typer.Option([], "--set", help="Override a config value: --set baselines.cross_encoder.epochs=1"),
    ) -> None:
        """Baselines on the run's splits: majority, lexical, MiniLM cross-encoder, LM zero-shot and direct-answer."""
        from taosr1_plugins.pipeline.baselines import run_baselines
        from taosr1_plugins.pipeline.config import load_config

        from taosr1_plugins.pipeline.preflight import check_run_config

        run_config = load_config(config, _overrides(set_))
        # the baselines run the splits and, for the direct-answer row, the SFT recipe
        check_run_config(run_config, config, stages=("import", "split", "sft"))
        try:
            run_baselines(run_config, only=only or None, force=force)
        except (ValueError, FileNotFoundError) as exc:
            raise typer.BadParameter(str(exc)) from exc

    @app.command("report")
    def report(
        run_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="A `taosr1 run` directory."),
        out_dir: Path = typer.Option(None, "--out-dir", help="Default: RUN_DIR/report."),
        irrelevant: str = typer.Option(None, "--irrelevant", help="Levels counted as irrelevant for over-recall, "
                                       "e.g. C,I (default: the run's deploy.irrelevant, else the scheme's lowest)."),
    ) -> None:
        """The run's one HTML report: ablation table with intervals, per-stage metrics, worst errors, run metadata.

        RUN_DIR/report/report.html (the page the deploy stage writes, now with the baselines found) and its numbers
        as RUN_DIR/report/ablation.json; the tables are printed as Markdown."""
        from rich.console import Console
        from rich.markup import escape

        from taosr1_plugins.evaluation.ablation import ablation_markdown, write_ablation
        from taosr1_plugins.evaluation.over_recall import parse_levels
        from taosr1_plugins.evaluation.run_report import report_warnings
        from taosr1_plugins.pipeline.stages import TRAINED_MODELS

        ablation, paths = write_ablation(run_dir, TRAINED_MODELS, out_dir, parse_levels(irrelevant))
        # the Markdown itself, not rich's rendering of it: a 17-column table would be cut to the terminal's width
        # ("uncalibrat…"), and the text is what docs/results.md and a pull request take
        typer.echo(ablation_markdown(ablation))
        console = Console(stderr=True)
        for warning in report_warnings(ablation):
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
        for kind, path in paths.items():
            typer.echo(f"{kind}: {path}")
