"""The plugin system: a light core, built-ins listed like any plugin, and a real third-party plugin
package installed with pip and found through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from importlib import metadata
from pathlib import Path

import pytest

from plugin_helpers import installed_plugin_env

from taosr1_plugins.data.samples import esci_sample_path

FIXTURE = Path(__file__).parent / "fixtures" / "taosr1_plugin_example"
HEAVY = ("torch", "transformers", "llamafactory", "openrlhf", "vllm", "deepspeed", "ray")


def python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], check=False, capture_output=True, text=True, env=env
    )


def taosr1(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )


def test_core_imports_no_training_framework():
    """Importing the package, its plugin manager and CLI, and loading every plugin, stays light."""
    result = python(
        f"""
        import sys
        import taosr1_plugins, taosr1_plugins.plugins, taosr1_plugins.cli
        import taosr1_plugins.cli.deploy, taosr1_plugins.deploy.ray_data.executor  # Ray only when a run starts
        from taosr1_plugins import plugins
        plugins.load_plugins()
        plugins.registered("scheme"); plugins.registered("importer"); plugins.registered("teacher")
        print(sorted(name for name in {HEAVY!r} if name in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_plugins_json_lists_the_builtins():
    result = taosr1("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["schemes"]["module"] == "taosr1_plugins.builtin.schemes"
    assert set(rows["schemes"]["provides"]["label schemes"]) >= {
        "taosr1",
        "esci",
        "crowdflower",
        "home_depot",
        "kuaisearch",
    }
    assert rows["importers"]["provides"]["dataset importers"] == [
        "csv", "tsv", "jsonl", "parquet", "crowdflower", "home_depot", "esci", "kuaisearch"
    ]
    assert rows["teachers"]["provides"]["teachers"]
    # built-ins are listed once (plugins.DEFAULT_PLUGINS) and shown with the distribution they come with
    assert rows["importers"]["distribution"].startswith("taosr1-plugins ")
    assert rows["trl"]["module"] == "taosr1_plugins.integrations.trl.backend"
    assert rows["trl"]["provides"] == {"training backends": ["trl"]}


def test_plugins_table():
    result = taosr1("plugins", env={**os.environ, "COLUMNS": "200"})  # rich wraps at the terminal width
    assert result.returncode == 0, result.stderr
    assert "dataset importers: csv, tsv, jsonl, parquet, crowdflower, home_depot, esci, kuaisearch" in result.stdout


def test_one_lookup_for_every_kind():
    """plugins.get is the one lookup: every hook has a kind, and an unknown name of any kind raises one
    error type that lists what is registered (the CLI turns it into one line and status 2)."""
    from taosr1_plugins import hookspecs, plugins
    from taosr1_plugins.errors import UnknownPluginError, UserError

    specs = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert {kind.hook for kind in plugins.KINDS.values()} == specs == set(plugins.HOOKS)
    builtins = {"scheme": "esci", "importer": "esci", "teacher": "template", "generation_backend": "hf",
                "reward": "relevance", "prompt_sampler": "difficulty", "deployment_adapter": "hf",
                "training_backend": "trl"}
    assert set(builtins) == set(plugins.KINDS)
    for kind, name in builtins.items():
        assert plugins.get(kind, name) is plugins.registered(kind)[name]
        with pytest.raises(UnknownPluginError) as caught:
            plugins.get(kind, "nope")
        words = plugins.KINDS[kind].one
        assert str(caught.value) == f"unknown {words} 'nope'; registered: {', '.join(sorted(plugins.registered(kind)))}"
        assert isinstance(caught.value, UserError) and isinstance(caught.value, KeyError)


def test_named_lookups_raise_the_one_error():
    from taosr1_plugins.core.schemes import get_scheme
    from taosr1_plugins.cot.teachers import get_teacher
    from taosr1_plugins.data.importing import get_importer
    from taosr1_plugins.errors import UnknownPluginError
    from taosr1_plugins.passn.generation import get_generation_backend

    for lookup, words in ((get_scheme, "label scheme"), (get_importer, "importer"), (get_teacher, "teacher"),
                          (get_generation_backend, "generation backend")):
        with pytest.raises(UnknownPluginError, match=f"unknown {words} 'nope'; registered: "):
            lookup("nope")


def test_a_name_registered_twice_is_refused():
    result = python(
        """
        from taosr1_plugins import plugins
        from taosr1_plugins.builtin.schemes import ESCI
        from taosr1_plugins.hookspecs import hookimpl

        class Clash:
            @hookimpl
            def register_label_schemes(self, register):
                register(ESCI)

        plugins.load_plugins().register(Clash(), name="clash")
        try:
            plugins.registered("scheme")
        except plugins.PluginError as exc:
            print("refused:", exc)
        """
    )
    assert "refused: label schemes: 'esci' is registered twice (again by plugin 'clash')" in result.stdout, (
        result.stderr
    )


@pytest.fixture(scope="module")
def example_plugin_env(tmp_path_factory) -> dict:
    """pip-install tests/fixtures/taosr1_plugin_example into a temporary --target directory (the venv
    stays clean) and return an environment that puts it on sys.path."""
    return installed_plugin_env(FIXTURE, tmp_path_factory.mktemp("example_plugin"))


def test_example_plugin_is_not_installed_in_the_venv():
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("taosr1-plugin-example")


def test_example_plugin_is_listed(example_plugin_env):
    result = taosr1("plugins", "--json", env=example_plugin_env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["example"] == {
        "name": "example",
        "module": "taosr1_plugin_example",
        "distribution": "taosr1-plugin-example 0.1.0",
        "provides": {"label schemes": ["esci_binary"]},
    }
    assert "schemes" in rows and "importers" in rows  # built-ins still there


def test_import_with_the_example_plugins_scheme(example_plugin_env, tmp_path):
    out = tmp_path / "esci_binary.jsonl"
    result = taosr1(
        "data",
        "import",
        "--source",
        "esci",
        "--scheme",
        "esci_binary",
        "--input",
        esci_sample_path(),
        "--out",
        out,
        env=example_plugin_env,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {row["scheme"] for row in rows} == {"esci_binary"}
    # Exact 138 + Substitute 49 -> 1; Irrelevant 12 + Complement 1 -> 0
    assert Counter(row["label"] for row in rows) == {"1": 187, "0": 13}

    result = taosr1("data", "validate", out, env=example_plugin_env)
    assert result.returncode == 0, result.stderr
    assert "esci_binary 1: 187" in result.stdout and "esci_binary 0: 13" in result.stdout
    # without the plugin the scheme is unknown, and validation says so
    result = taosr1("data", "validate", out)
    assert result.returncode != 0 and "esci_binary" in result.stderr
