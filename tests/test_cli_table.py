"""One table registers every `taosr1` command, lazily; every user-facing error is a UserError (status 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hostile_helpers import run_main
from taosr1_plugins.cli import COMMANDS, load_command
from taosr1_plugins.errors import UserError


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


@pytest.mark.parametrize(("name", "module_name", "help_text"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_table_entry_is_the_command_it_lists(name, module_name, help_text):
    command = load_command(name)
    assert command is not None and command.name == name
    # the line `taosr1 --help` shows without importing the module is the command's own help
    assert _first_paragraph(command.help) == help_text


def test_top_level_help_imports_no_command_module():
    code = (
        "import sys\n"
        "sys.argv = ['taosr1', '--help']\n"
        "from taosr1_plugins.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('taosr1_plugins.cli.') or m == 'pydantic'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    for name, _, _ in COMMANDS:
        assert f" {name} " in result.stdout


def test_an_unknown_command_is_refused_with_a_suggestion(capsys, monkeypatch):
    code, err = run_main(capsys, monkeypatch, "dat")
    assert code == 2 and "No such command 'dat'" in err and "'data'" in err


@pytest.mark.parametrize(
    ("module_name", "class_name", "other_base"),
    [
        ("taosr1_plugins.plugins", "PluginError", Exception),
        ("taosr1_plugins.core.schemes", "SchemeError", ValueError),
        ("taosr1_plugins.cot.teachers", "TeacherError", RuntimeError),
        ("taosr1_plugins.integrations.llamafactory.patching", "PatchError", RuntimeError),
        ("taosr1_plugins.passn.sample", "SettingsMismatchError", ValueError),
        ("taosr1_plugins.passn.generation", "GenerationError", RuntimeError),
        ("taosr1_plugins.core.openai_chat", "EndpointError", RuntimeError),
    ],
)
def test_user_facing_errors_are_user_errors(module_name, class_name, other_base):
    import importlib

    cls = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(cls, UserError) and issubclass(cls, other_base)  # `except ValueError` callers still catch it


def test_patch_error_is_one_line_and_status_2(capsys, monkeypatch):
    from taosr1_plugins.integrations.llamafactory import patching

    def not_installed():
        raise patching.PatchError("llamafactory is not installed (pip install 'taosr1-plugins[llamafactory]')")

    monkeypatch.setattr(patching, "installed_llamafactory_root", not_installed)
    code, err = run_main(capsys, monkeypatch, "patch", "llamafactory", "--check")
    assert code == 2 and err.startswith("error: llamafactory is not installed") and "Traceback" not in err, err


def test_other_os_errors_on_a_commands_files_name_the_path(capsys, monkeypatch, tmp_path):
    import errno

    import taosr1_plugins.data.validation as validation

    def unreadable(path, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(validation, "validate_records", unreadable)
    code, err = run_main(capsys, monkeypatch, "data", "validate", tmp_path / "r.jsonl")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'r.jsonl'}: Input/output error"), err
