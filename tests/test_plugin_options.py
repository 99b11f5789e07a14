"""Plugins carry their own option models: a teacher, generation backend or deployment adapter factory declares
``options_model`` (and ``loads_checkpoint``), and the run config, the command line and the stages read them from
the factory, for the built-ins and a plugin's alike (taosr1_plugins/core/options.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from taosr1_plugins import plugins
from taosr1_plugins.cli import app
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.core.options import (
    OptionError,
    check_options,
    loads_checkpoint,
    options_model,
)
from taosr1_plugins.errors import DataError, UnknownPluginError
from taosr1_plugins.hookspecs import hookimpl
from taosr1_plugins.passn.generation import Completion, generation_options

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
NO_CHECKPOINT = "./no/such/checkpoint"  # looks local: a checked path is refused at once


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    answer: str = Field("E", description="the level every sample names")
    repeat: int = Field(1, ge=1)


class EchoBackend:
    """A plugin generation backend for a served model: it declares its options, and takes no batch size."""

    options_model: ClassVar[type[BaseModel]] = EchoOptions
    loads_checkpoint: ClassVar[bool] = False
    created: ClassVar[list[EchoOptions]] = []

    def __init__(self, **options):
        self.options = EchoOptions(**options)
        EchoBackend.created.append(self.options)

    def sample(self, conversations, params):
        text = f"<answer>{self.options.answer}</answer>\n<think>\n{'echo ' * self.options.repeat}\n</think>"
        return [[Completion(text, "stop") for _ in range(params.n)] for _ in conversations]


class LocalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    batch_size: int = 4


class LocalBackend(EchoBackend):
    """A plugin backend that loads a checkpoint and batches: the model path is checked, the batch size offered."""

    options_model = LocalOptions
    loads_checkpoint = True


def untyped_backend(**options):  # no options model: checked when created, as before; offered the batch size
    raise AssertionError("not created in these tests")


class ConstScorerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: str = "E"


def const_scorer(model, scheme, **options):
    raise AssertionError("not created in these tests")


const_scorer.options_model = ConstScorerOptions


class ShoutOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volume: int = Field(1, ge=1, le=11)


class ShoutTeacher:
    options_model: ClassVar[type[BaseModel]] = ShoutOptions

    def __init__(self, **options):
        self.options = ShoutOptions(**options)

    def generate(self, requests):
        return ["" for _ in requests]


class OptionsPlugin:
    @hookimpl
    def register_generation_backends(self, register):
        register("echo", EchoBackend)
        register("local", LocalBackend)
        register("untyped", untyped_backend)

    @hookimpl
    def register_deployment_adapters(self, register):
        register("const", const_scorer)

    @hookimpl
    def register_teachers(self, register):
        register("shout", ShoutTeacher)


@pytest.fixture
def options_plugin():
    pm = plugins.load_plugins()
    plugin = OptionsPlugin()
    pm.register(plugin, name="test-options-plugin")
    EchoBackend.created.clear()
    yield plugin
    pm.unregister(plugin)


BUILTINS = {
    "teacher": ("template", "openai", "hf"),
    "generation_backend": ("hf", "vllm", "openai"),
    "deployment_adapter": ("hf", "vllm"),
}


@pytest.mark.parametrize("kind", sorted(BUILTINS))
def test_every_builtin_declares_its_options(kind):
    found = plugins.registered(kind)
    for name in BUILTINS[kind]:
        model = options_model(found[name])
        assert model is not None and model.model_config.get("extra") == "forbid", (kind, name)
    if kind != "teacher":
        assert {name for name in BUILTINS[kind] if loads_checkpoint(found[name])} == {"hf", "vllm"}


@pytest.mark.parametrize(
    ("kind", "name", "options", "words"),
    [
        ("teacher", "template", {"style": "terse"}, "teacher 'template' option 'style'"),
        ("teacher", "openai", {"model": "m", "temprature": 0.1}, "teacher 'openai' option 'temprature'"),
        ("teacher", "hf", {"model": "m", "batch_size": 0}, "teacher 'hf' option 'batch_size'"),
        ("teacher", "hf", {}, "teacher 'hf' option 'model': Field required"),
        ("generation_backend", "hf", {"model": "m", "devise": "cpu"}, "generation backend 'hf' option 'devise'"),
        ("generation_backend", "vllm", {"model": "m", "batch_size": 8}, "generation backend 'vllm' option 'batch_size'"),
        ("generation_backend", "openai", {"model": "m", "concurrency": 0}, "generation backend 'openai' option 'concurrency'"),
        ("deployment_adapter", "hf", {"dtyp": "float32"}, "deployment adapter 'hf' option 'dtyp'"),
        ("deployment_adapter", "vllm", {"device": "cpu"}, "deployment adapter 'vllm' option 'device'"),
    ],
)
def test_a_bad_builtin_option_is_named(kind, name, options, words):
    with pytest.raises(OptionError) as caught:
        check_options(kind, name, options)
    assert str(caught.value).startswith(words)
    assert isinstance(caught.value, ValueError)  # a config validator reports it at its section


def test_options_are_checked_against_the_plugins_model(options_plugin):
    assert check_options("generation_backend", "echo", {"model": "m", "repeat": "3"}).repeat == 3
    with pytest.raises(OptionError, match="generation backend 'echo' option 'repeat': Input should be greater"):
        check_options("generation_backend", "echo", {"model": "m", "repeat": 0})
    # what the caller passes itself is no option, and stands in for a required field while checking
    assert check_options("generation_backend", "echo", {}, given={"model": "m"}).model == "m"
    with pytest.raises(OptionError, match="option 'model': --model passes this itself"):
        check_options("generation_backend", "echo", {"model": "x"}, given={"model": "m"}, given_by="--model")
    # a factory without a model is checked when created, as it always was
    assert check_options("generation_backend", "untyped", {"anything": 1}) is None
    with pytest.raises(UnknownPluginError):
        check_options("generation_backend", "nope", {})
    assert check_options("generation_backend", "nope", {}, if_registered=True) is None


def test_the_batch_size_goes_to_backends_that_take_one(options_plugin):
    assert generation_options("local", 6, {}) == {"batch_size": 6}
    assert generation_options("echo", 6, {"repeat": 2}) == {"repeat": 2}  # its model has no batch size
    assert generation_options("untyped", 6, {}) == {"batch_size": 6}  # unknown: offered, as before


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        # the field is the option's own path (issue 32), the message names the plugin
        ({"passn.backend": "echo", "passn.options": {"repeet": 2}}, "passn.options.repeet", "generation backend 'echo' option 'repeet'"),
        ({"passn.backend": "echo", "passn.options": {"model": "m"}}, "passn.options.model", "option 'model': the stage passes"),
        ({"deploy.backend": "const", "deploy.options": {"levle": "S"}}, "deploy.options.levle", "deployment adapter 'const' option 'levle'"),
    ],
)
def test_a_plugins_bad_option_stops_the_config_load(options_plugin, override, field, words):
    with pytest.raises(DataError) as caught:
        from taosr1_plugins.pipeline.config import load_config

        load_config(QUICKSTART, override)
    assert caught.value.field == field and words in caught.value.message


def test_a_plugins_good_options_load(options_plugin):
    from taosr1_plugins.pipeline.config import load_config

    config = load_config(QUICKSTART, {"passn.backend": "echo", "passn.options": {"repeat": 2},
                                      "deploy.backend": "const", "deploy.options": {"level": "S"}})
    assert config.passn.options == {"repeat": 2} and config.deploy.options == {"level": "S"}
    # an unknown backend passes the load: preflight names it with the registered ones
    assert load_config(QUICKSTART, {"passn.backend": "nope", "passn.options": {"x": 1}}).passn.backend == "nope"


def _sample(tmp_path: Path, records, backend: str, *args: str):
    data = tmp_path / "records.jsonl"
    if records is not None:
        write_jsonl(data, records)  # else: never read
    out = tmp_path / f"{backend}-{len(list(tmp_path.iterdir()))}.jsonl"
    return out, CliRunner().invoke(app, ["passn", "sample", "--model", NO_CHECKPOINT, "--data", str(data), "--out",
                                         str(out), "--backend", backend, "--n", "2", "--no-progress", *args])


def test_passn_sample_reads_the_plugins_declarations(tmp_path, esci_records, options_plugin):
    # a served model's name is no checkpoint path; the options reach the factory, converted by its model
    out, result = _sample(tmp_path, esci_records[:3], "echo", "-o", "repeat=2", "-o", "answer=S")
    assert result.exit_code == 0, result.output
    assert [o.model_dump() for o in EchoBackend.created] == [{"model": NO_CHECKPOINT, "answer": "S", "repeat": 2}]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["label"] == "S" for row in rows for r in row["responses"])

    # a bad option is named before any file is read or the backend is created
    EchoBackend.created.clear()
    (tmp_path / "records.jsonl").unlink()
    out, result = _sample(tmp_path, None, "echo", "-o", "repeet=2")
    assert result.exit_code == 2 and "generation backend 'echo' option 'repeet'" in result.output
    assert not out.exists() and not EchoBackend.created

    # a backend that loads a checkpoint has its model path checked first
    out, result = _sample(tmp_path, esci_records[:3], "local")
    assert result.exit_code == 2 and "no such model directory" in result.output and not EchoBackend.created


def test_cot_generate_checks_the_teachers_options_first(tmp_path, options_plugin):
    runner = CliRunner()
    missing = tmp_path / "missing.jsonl"  # never read: the option is refused first
    args = ["cot", "generate", "--data", str(missing), "--out", str(tmp_path / "o.jsonl"), "--no-progress"]
    result = runner.invoke(app, [*args, "--teacher", "shout", "-o", "volume=12"])
    assert result.exit_code == 2 and "teacher 'shout' option 'volume'" in result.output
    result = runner.invoke(app, [*args, "--teacher", "template", "-o", "style=terse"])
    assert result.exit_code == 2 and "teacher 'template' option 'style'" in result.output


def test_score_refuses_what_the_adapter_would_before_reading(tmp_path):
    missing = tmp_path / "missing.jsonl"
    result = CliRunner().invoke(app, ["score", "--model", NO_CHECKPOINT, "--data", str(missing), "--out",
                                      str(tmp_path / "s.jsonl"), "--backend", "vllm", "--device", "cpu"])
    assert result.exit_code == 2 and "deployment adapter 'vllm' option 'device'" in result.output


def test_builtin_holds_registrations_only():
    """Implementations live in their stage folders (passn/backends/, cot/teacher_backends/, deploy/scorers/,
    data/importers.py, grpo/): a builtin module defines no class and imports them only inside its hooks."""
    import ast

    from taosr1_plugins import builtin

    allowed = {"taosr1_plugins.hookspecs", "taosr1_plugins.core.options", "taosr1_plugins.core.schemes"}
    for path in sorted(Path(builtin.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not [n.name for n in tree.body if isinstance(n, ast.ClassDef)], path.name
        top_imports = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        assert top_imports <= allowed, (path.name, top_imports - allowed)
