"""`taosr1 init`: a starter run config, the quickstart's settings with its data section pointed at the user's file.

Written as text from the package's configs/quickstart.yaml so that the comments explaining each setting come
along. Its recipe paths (``../recipes/...``) stay as they are: from a folder without recipes/ beside it they
name the package's copy (RunConfig.resolve), so the config runs from any folder, also after a plain `pip install`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from taosr1_plugins.data.columns import ImportOptions
from taosr1_plugins.errors import DataError, OutputExistsError, UserError
from taosr1_plugins.shipped import shipped_dir

STARTER_NAME = "taosr1.yaml"  # what `taosr1 init DIR` writes into DIR
TEMPLATE = "quickstart.yaml"  # in the package's configs/
SAMPLE_SOURCE = "esci"  # the importer of the sample used when no data file is given
_COMMENT_COLUMN = 30  # where the template's own comments start


@dataclass(frozen=True)
class DataChoice:
    """The starter's data section: an importer, the user's raw file (None: the shipped ESCI sample), a scheme,
    and how the importer reads the file (a column map, a label map, a delimiter: `data import`'s flags)."""

    source: str = SAMPLE_SOURCE
    input: Path | None = None
    scheme: str | None = None
    options: ImportOptions = field(default_factory=ImportOptions)


def template_text() -> str:
    configs = shipped_dir("configs")
    if configs is None or not (configs / TEMPLATE).is_file():
        raise UserError(f"configs/{TEMPLATE} is missing from the installed package; reinstall taosr1-plugins")
    return (configs / TEMPLATE).read_text(encoding="utf-8")


def write_starter(directory: Path, data: DataChoice, *, force: bool = False) -> Path:
    """Write DIRECTORY/taosr1.yaml; the data file is checked to import with its importer and scheme first."""
    from taosr1_plugins.core.jsonl import atomic_write
    from taosr1_plugins.pipeline.config import RunConfig

    if data.input is None and data.source != SAMPLE_SOURCE:
        raise UserError(f"--source {data.source} needs --data: without it the run reads the shipped ESCI sample")
    if data.input is None and data.options.given():
        raise UserError("--map, --labels and --delimiter describe your file: they need --data")
    directory = directory.resolve()
    out = directory / STARTER_NAME
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists (use --force to replace it)")
    check_data_imports(data)
    text = starter_text(template_text(), data, directory)
    written = RunConfig.model_validate(yaml.safe_load(text))  # the template's layout changed: a bug, loudly
    if ImportOptions(**written.data.model_dump(include=set(ImportOptions.model_fields))) != data.options:
        raise RuntimeError("the starter's data section does not read back as the options given")  # a bug
    with atomic_write(out) as fh:
        fh.write(text)
    return out


def check_data_imports(data: DataChoice) -> None:
    """The importer reads the first records of the file with the scheme: a wrong --source or --scheme fails now,
    naming the line and field, not when the run starts."""
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.data.samples import esci_sample_path

    try:
        for _ in import_records(data.source, data.input or esci_sample_path(), data.scheme, 3, data.options):
            pass
    except DataError as exc:  # a new user's likeliest mistake is the importer, scheme or map, not the file
        read_as = f"--source {data.source}" + (f" --scheme {data.scheme}" if data.scheme else "")
        raise DataError(exc.file, exc.line, exc.field, f"{exc.message} (read as {read_as})") from exc


def starter_text(template: str, data: DataChoice, directory: Path) -> str:
    lines = template.splitlines()
    while lines and lines[0].startswith("#"):  # the template's header is about `make demo`
        lines.pop(0)
    lines = _replace_key(lines, "run_dir", [_setting("run_dir", f"runs/{_slug(directory.name)}", "from where you run `taosr1 run`")])
    section = ["data:",
               _setting("  source", data.source, "importer plugin (taosr1 plugins lists them)"),
               _setting("  input", _config_path(data.input, directory) if data.input else None,
                        "relative paths resolve from this file's folder" if data.input
                        else "null: the ESCI sample shipped in the package (200 pairs, Apache-2.0)"),
               _setting("  scheme", _scheme_value(data.scheme), "label scheme name or YAML file; null: the importer's own"),
               *_import_option_lines(data.options)]
    lines = _replace_key(lines, "data", section)
    header = [
        f"# Written by `taosr1 init` from the package's configs/{TEMPLATE}: every TaoSR1 stage at a size 2 CPU cores",
        "# finish in about 20 minutes on the 200-pair sample; raise sft.examples, passn.limit and eval.limit for a real run.",
        "# Relative paths resolve from this file's folder; recipes (../recipes/...) that are not there, from the package.",
        f"#   taosr1 run {STARTER_NAME} --check    # every file, plugin and framework setting, in seconds",
        f"#   taosr1 run {STARTER_NAME}",
    ]
    return "\n".join(header + lines) + "\n"


def _import_option_lines(options: ImportOptions) -> list[str]:
    """data.map, data.labels and data.delimiter, only those given (the quickstart's importer needs none)."""
    comments = {"map": "record field: your file's column", "labels": "your raw label: level key",
                "delimiter": "your file's field delimiter"}
    lines = []
    for name, comment in comments.items():
        value = getattr(options, name)
        if value:
            # JSON is YAML: a flow mapping and a quoted delimiter (";" or a tab) read back as themselves
            lines.append(f"  {name}: {json.dumps(value, ensure_ascii=False)}".ljust(_COMMENT_COLUMN - 1) + f" # {comment}")
    return lines


def _replace_key(lines: list[str], key: str, new: list[str]) -> list[str]:
    """``lines`` with top-level ``key`` (its line and its indented block) replaced by ``new``."""
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
    if start is None:
        raise RuntimeError(f"configs/{TEMPLATE} has no top-level '{key}:'")  # a bug: the template changed
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():  # keep the blank line before the next key
        end -= 1
    return lines[:start] + new + lines[end:]


def _setting(key: str, value: str | None, comment: str) -> str:
    return f"{key}: {_scalar(value)}".ljust(_COMMENT_COLUMN - 1) + f" # {comment}"


def _scalar(value: str | None) -> str:
    """``value`` as a YAML scalar that reads back as itself: plain where that is safe, else JSON's quoting."""
    if value is None:
        return "null"
    if re.fullmatch(r"[\w./-]+", value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _config_path(path: Path, directory: Path) -> str:
    """The data file as the config names it: relative inside the config's folder (the pair moves together),
    absolute elsewhere (it works from wherever the command runs)."""
    path = path.resolve()
    return path.relative_to(directory).as_posix() if path.is_relative_to(directory) else str(path)


def _scheme_value(scheme: str | None) -> str | None:
    # a scheme file is read from where the command runs (core.schemes.get_scheme): absolute, so any folder works
    if scheme is not None and os.path.isfile(scheme):
        return str(Path(scheme).resolve())
    return scheme


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "starter"
