"""`taosr1 run CONFIG`: the main job."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Run config YAML (see configs/)."),
        from_stage: str = typer.Option(None, "--from", help="Re-run from this stage on, even if unchanged."),
        until_stage: str = typer.Option(None, "--until", help="Stop after this stage."),
        set_: list[str] = typer.Option([], "--set", help="Override a config value: --set eval.limit=10"),
    ) -> None:
        """Run every stage: import → split → CoT → export → SFT → evaluation."""
        import yaml

        from ..pipeline.config import load_config
        from ..pipeline.runner import STAGE_NAMES, run_pipeline

        for name in (from_stage, until_stage):
            if name is not None and name not in STAGE_NAMES:
                raise typer.BadParameter(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
        overrides = {}
        for item in set_:
            key, sep, value = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--set takes KEY=VALUE, got {item!r}")
            overrides[key] = yaml.safe_load(value)
        manifest = run_pipeline(load_config(config, overrides), from_stage=from_stage, until_stage=until_stage)
        typer.echo(f"run directory: {manifest.path.parent}")
