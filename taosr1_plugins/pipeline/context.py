"""Where a run's files live and what its config resolves to."""

from __future__ import annotations

from pathlib import Path

from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.pipeline.manifest import Manifest


class RunContext:
    def __init__(self, config: RunConfig):
        self.config = config
        # Relative run directories are relative to where the user runs the command, like output_dir in
        # LLaMA-Factory recipes.
        self.run_dir = Path(config.run_dir).resolve()
        self.manifest = Manifest(self.run_dir)

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    @property
    def scheme(self):
        from taosr1_plugins.data.importing import check_import

        return check_import(self.config.data.source, self.config.scheme_ref())

    def split_path(self, name: str) -> Path:
        return self.path("data", f"{name}.jsonl")

    def base_model(self) -> Path | str:
        from taosr1_plugins.core.models import resolve_model

        return resolve_model(self.config.model.base)

    def model_dir(self, stage: str) -> Path:
        return self.path(stage, "model")
