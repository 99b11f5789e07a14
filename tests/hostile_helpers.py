"""Running the real `taosr1` entry point in-process, and proving that a failed command touched nothing."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from taosr1_plugins.cli import main


def run_cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `taosr1 ARGS` through cli.main(), the console script's function."""
    monkeypatch.setattr(sys, "argv", ["taosr1", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "1000")  # usage errors are boxed by rich: keep long paths on one line
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def run_main(capsys, monkeypatch, *args) -> tuple[int, str]:
    """(exit status, stderr) of `taosr1 ARGS`."""
    code, _, err = run_cli(capsys, monkeypatch, *args)
    return code, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with a digest of its bytes (directories and special files by kind)."""
    state = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            state[rel] = "link:" + str(path.readlink())
        elif path.is_file():
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[rel] = "dir" if path.is_dir() else "special"
    return state


def assert_clean_failure(code: int, err: str, before: dict[str, str], folder: Path, *expected: str) -> None:
    """Status 2, one located message without a traceback, and every file byte-identical, none added."""
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("error: "), err
    for text in expected:
        assert text in err, err
    assert snapshot(folder) == before
