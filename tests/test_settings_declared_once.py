"""Each stage setting is declared once, in the stage's settings model: the CLI option's default and help, the
run config section's default and the stage's own defaults all come from it, so they cannot drift apart again.

Read from the real `taosr1` app (click introspection), never restated here.
"""

from __future__ import annotations

import pytest
import typer

from taosr1_plugins.cli import app
from taosr1_plugins.cot.config import CotOptions, CotSettings
from taosr1_plugins.data.columns import ImportOptions, parse_pairs
from taosr1_plugins.data.splits import SplitSettings, parse_ratios
from taosr1_plugins.deploy.config import CalibrationSettings, ExplainSettings, ScoringSettings
from taosr1_plugins.passn.config import PairOptions, PairSettings, PassnRunSettings, PassnSettings, PassnShardSettings
from taosr1_plugins.passn.difficulty import DifficultyThresholds
from taosr1_plugins.pipeline.config import RunConfig

ROOT = typer.main.get_command(app)

# (command path, click parameter name, settings model, field); None: the field has no option of that command
CLI_OPTIONS = [
    (("data", "import"), "map_text", ImportOptions, "map"),
    (("data", "import"), "labels_text", ImportOptions, "labels"),
    (("data", "import"), "delimiter", ImportOptions, "delimiter"),
    (("data", "split"), "by", SplitSettings, "by"),
    (("data", "split"), "ratios", SplitSettings, "ratios"),
    (("cot", "generate"), "teacher", CotOptions, "teacher"),
    (("cot", "generate"), "k", CotOptions, "k"),
    (("cot", "generate"), "retries", CotOptions, "retries"),
    (("cot", "generate"), "batch_size", CotOptions, "batch_size"),
    (("cot", "generate"), "max_words", CotOptions, "max_words"),
    (("cot", "generate"), "hint", CotOptions, "hint_on_retry"),
    (("passn", "sample"), "backend", PassnShardSettings, "backend"),
    (("passn", "sample"), "n", PassnShardSettings, "n"),
    (("passn", "sample"), "temperature", PassnShardSettings, "temperature"),
    (("passn", "sample"), "top_p", PassnShardSettings, "top_p"),
    (("passn", "sample"), "max_new_tokens", PassnShardSettings, "max_new_tokens"),
    (("passn", "sample"), "seed", PassnShardSettings, "seed"),
    (("passn", "sample"), "shard_size", PassnShardSettings, "shard_size"),
    (("passn", "sample"), "batch_size", PassnRunSettings, "batch_size"),
    (("passn", "difficulty"), "easy", DifficultyThresholds, "easy"),
    (("passn", "difficulty"), "medium", DifficultyThresholds, "medium"),
    (("passn", "pairs"), "name", PairOptions, "name"),
    (("passn", "pairs"), "max_pairs_per_prompt", PairOptions, "max_pairs_per_prompt"),
    (("passn", "pairs"), "skip_all_correct", PairOptions, "skip_all_correct"),
    (("passn", "pairs"), "gold_cot", PairOptions, "gold_cot_when_all_wrong"),
    (("score",), "backend", ScoringSettings, "backend"),
    (("score",), "batch_size", ScoringSettings, "batch_size"),
    (("score",), "explain_margin", ExplainSettings, "explain_margin"),
    (("score",), "max_explain_tokens", ExplainSettings, "max_explain_tokens"),
    (("serve",), "explain_margin", ExplainSettings, "explain_margin"),
    (("serve",), "max_explain_tokens", ExplainSettings, "max_explain_tokens"),
    (("calibrate",), "objective", CalibrationSettings, "objective"),
    (("calibrate",), "calibration", CalibrationSettings, "calibration"),
]

# run config section -> the stage settings models it is made of (same keys, same defaults)
SECTIONS = {
    "data": (ImportOptions,),
    "split": (SplitSettings,),
    "cot": (CotSettings,),
    "passn": (PassnRunSettings,),
    "dpo": (PairSettings,),
    "deploy": (ScoringSettings, CalibrationSettings),
}


def _param(path: tuple[str, ...], name: str):
    command = ROOT
    for part in path:
        command = command.commands[part]
    (param,) = [p for p in command.params if p.name == name]
    return param


def _cli_value(field: str, value):
    if field == "ratios":  # the command line takes any number of ratios, as text
        return tuple(parse_ratios(value))
    if field in ("map", "labels"):  # key=value pairs, as text
        return parse_pairs(value or "")
    return getattr(value, "value", value)  # a choice enum (--by)


@pytest.mark.parametrize(("path", "name", "model", "field"), CLI_OPTIONS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_cli_option_default_and_help_are_the_models(path, name, model, field):
    param = _param(path, name)
    info = model.model_fields[field]
    assert _cli_value(field, param.default) == info.get_default(call_default_factory=True)
    assert param.help == info.description


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_config_section_is_made_of_the_stage_models(section):
    config = RunConfig()
    value = getattr(config, section)
    for model in SECTIONS[section]:
        assert isinstance(value, model)
        defaults = model()
        for field in model.model_fields:
            assert getattr(value, field) == getattr(defaults, field), f"{section}.{field}"


def test_stage_options_extend_the_shared_settings():
    # what the stage functions run with is the same declaration the CLI and the config read
    assert issubclass(CotOptions, CotSettings)
    assert issubclass(PassnShardSettings, PassnSettings) and issubclass(PassnRunSettings, PassnSettings)
    assert issubclass(PairOptions, PairSettings)

    from taosr1_plugins.deploy.config import ScoreSettings
    from taosr1_plugins.deploy.scoring import ScoreSettings as used_by_scoring

    assert issubclass(ScoreSettings, ScoringSettings) and issubclass(ScoreSettings, ExplainSettings)
    assert used_by_scoring is ScoreSettings  # one model, not a twin restating the defaults


def test_unified_defaults():
    # the values the shipped configs and `taosr1 run` used before the CLI defaults followed them
    assert SplitSettings().ratios == (0.7, 0.1, 0.2)
    assert CotOptions().batch_size == 8
    assert PassnRunSettings().batch_size == 8


@pytest.mark.parametrize(
    ("backend", "args", "expected"),
    [
        ("hf", [], 8),  # the default reaches a backend that has a batch size, as in `taosr1 run`
        ("openai", [], None),  # ... and not one without (it would refuse the key)
        ("hf", ["--batch-size", "3"], 3),
        ("openai", ["--batch-size", "3"], "refused"),  # asked for: its options model refuses it, by name
    ],
)
def test_passn_sample_batch_size_reaches_the_backend_as_in_the_main_job(
    tmp_path, monkeypatch, esci_records, backend, args, expected
):
    from typer.testing import CliRunner

    import taosr1_plugins.core.models as models
    import taosr1_plugins.passn.sample as sample_module
    from taosr1_plugins.core.jsonl import write_jsonl

    seen = {}

    def fake_sample(model, records, out, settings, *, backend_options, **kwargs):
        seen.update(backend_options)
        return {"settings": settings.model_dump(), "model": model, "prompts": 0, "seconds": 0, "per_level": {},
                "pass@1": 0.0, "pass@n": 0.0, "majority_accuracy": 0.0, "format_ok_rate": 0.0, "buckets": {}}

    monkeypatch.setattr(sample_module, "sample_passn", fake_sample)
    monkeypatch.setattr(models, "resolve_model", lambda model, **kwargs: model)  # "m" names no model: never loaded
    data = tmp_path / "records.jsonl"
    write_jsonl(data, esci_records[:2])
    result = CliRunner().invoke(app, ["passn", "sample", "--model", "m", "--data", str(data), "--out",
                                      str(tmp_path / "s.jsonl"), "--backend", backend, "--no-progress", *args])
    if expected == "refused":
        assert result.exit_code == 2 and "generation backend 'openai' option 'batch_size'" in result.output
        assert not seen  # before the backend is asked for anything
        return
    assert result.exit_code == 0, result.output
    assert seen.get("batch_size") == expected, result.output
