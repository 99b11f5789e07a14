"""`taosr1 data import | validate | split`: raw judgement files -> checked, split records.

Thin on purpose: the logic lives in importing.py, validation.py and splits.py. Every output is written
atomically, so a command that fails leaves no output file behind, not even a partial one.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path

import typer

from taosr1_plugins.cli import file_errors
from taosr1_plugins.cli.options import field_default, import_options, option
from taosr1_plugins.data.columns import ImportOptions
from taosr1_plugins.data.splits import SplitSettings

app = typer.Typer(no_args_is_help=True, add_completion=False)

SCHEME_HELP = "Label scheme: a registered name or a YAML file."


class GroupBy(str, Enum):
    query = "query"
    id = "id"


def _echo_label_counts(counts: Counter, title: str) -> None:
    """One line per (scheme, label), in the scheme's level order when the scheme is known."""
    from taosr1_plugins.core.schemes import SchemeError, get_scheme
    from taosr1_plugins.errors import UnknownPluginError

    typer.echo(title)
    for scheme_name in sorted({scheme for scheme, _ in counts}):
        try:
            order = {key: i for i, key in enumerate(get_scheme(scheme_name).keys)}
        except (SchemeError, UnknownPluginError, ValueError):
            order = {}
        labels = sorted(
            (label for scheme, label in counts if scheme == scheme_name),
            key=lambda label: (label is None, order.get(label, len(order)), str(label)),
        )
        for label in labels:
            shown = "(unlabelled)" if label is None else label
            typer.echo(f"  {scheme_name} {shown}: {counts[scheme_name, label]}")


@app.command("import")
def import_(
    source: str = typer.Option(..., "--source", help="Importer: csv, tsv, jsonl or parquet for any table (map its "
                               "columns with --map), or a data set's preset: crowdflower, home_depot, esci, "
                               "kuaisearch (`taosr1 plugins` lists all)."),
    input_path: Path = typer.Option(..., "--input", help="Raw file (CSV/TSV/JSONL, optionally .gz; Parquet)."),
    out: Path = typer.Option(..., "--out", help="Records file to write (.jsonl)."),
    scheme: str | None = typer.Option(None, "--scheme", help=SCHEME_HELP + " Default: the importer's own (a preset's "
                                      "data set); csv, tsv, jsonl and parquet need one."),
    map_text: str | None = option(ImportOptions, "map", "--map", default=None),
    labels_text: str | None = option(ImportOptions, "labels", "--labels", default=None),
    delimiter: str | None = option(ImportOptions, "delimiter"),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Import at most N records."),
) -> None:
    """Import a raw relevance file into records, mapping its columns to record fields and its labels to a scheme.

    Records of a scheme read from a YAML file carry the file's path (scheme_file), so `data validate`, `cot`,
    `export` and `score` read the same scheme without being told.
    """
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.jsonl import check_outputs, write_jsonl

    options = import_options(map_text, labels_text, delimiter)
    counts: Counter = Counter()
    files: set[str] = set()

    def counted(records):
        for record in records:
            counts[record.scheme, record.label] += 1
            if record.scheme_file:
                files.add(record.scheme_file)
            yield record

    with file_errors():
        check_outputs([out], [input_path])
        written = write_jsonl(out, counted(import_records(source, input_path, scheme, limit, options)))
        _echo_label_counts(counts, f"wrote {written} records to {out}")
        for path in sorted(files):
            typer.echo(f"scheme file (named in every record, read by later commands): {path}")


@app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="Records file (.jsonl)."),
    scheme: str | None = typer.Option(None, "--scheme", help=SCHEME_HELP + " Default: each record's own."),
) -> None:
    """Check every record, and that each label is a level of its record's scheme; print label counts."""
    from taosr1_plugins.core.schemes import get_scheme
    from taosr1_plugins.data.validation import validate_records

    with file_errors():
        counts = validate_records(file, get_scheme(scheme) if scheme else None)
        _echo_label_counts(counts, f"{file}: {sum(counts.values())} valid records")


@app.command("split")
def split(
    file: Path = typer.Argument(..., help="Records file (.jsonl)."),
    by: GroupBy = option(SplitSettings, "by", default=GroupBy(field_default(SplitSettings, "by"))),
    out_dir: Path = typer.Option(..., "--out-dir", help="Directory for NAME.jsonl files."),
    ratios: str = option(SplitSettings, "ratios", default=",".join(map(str, field_default(SplitSettings, "ratios")))),
    seed: int = typer.Option(0, "--seed"),
    names: str = typer.Option("train,dev,test", "--names", help="Split names, one per ratio."),
    scheme: str | None = typer.Option(None, "--scheme", help=SCHEME_HELP + " Default: each record's own."),
) -> None:
    """Split records into train/dev/test with no group (query) in two splits; deterministic per seed."""
    from taosr1_plugins.errors import DataError
    from taosr1_plugins.core.jsonl import PLAIN_NAME_RULE, check_outputs, is_plain_name, write_jsonl_all
    from taosr1_plugins.core.schemes import get_scheme
    from taosr1_plugins.data.splits import GROUP_KEYS, empty_splits, parse_ratios, split_groups
    from taosr1_plugins.data.validation import read_checked_records

    split_names = [name.strip() for name in names.split(",")]
    for split_name in split_names:
        if split_name and not is_plain_name(split_name):
            raise typer.BadParameter(f"{split_name!r} is not a plain file name ({PLAIN_NAME_RULE})", param_hint="--names")
    try:
        parsed = parse_ratios(ratios)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ratios") from None
    if len(split_names) != len(parsed) or len(set(split_names)) != len(split_names) or not all(split_names):
        raise typer.BadParameter(
            f"need {len(parsed)} distinct names, one per ratio; got {names!r}", param_hint="--names"
        )

    with file_errors():
        paths = [out_dir / f"{name}.jsonl" for name in split_names]
        check_outputs(paths, [file])
        # all of it first, with the same check as `validate`: a bad line must stop us before any write
        records = read_checked_records(file, get_scheme(scheme) if scheme else None)
        if not records:  # empty splits are never what was meant
            raise DataError(str(file), None, None, "no records to split")
        key = GROUP_KEYS[by.value]
        parts = split_groups(records, key, parsed, seed)
        write_jsonl_all(dict(zip(paths, parts)))  # every split or none
        for name, part, path in zip(split_names, parts, paths):
            typer.echo(f"{name}: {len(part)} records, {len({key(r) for r in part})} {by.value} groups -> {path}")
        sizes = {name: len(part) for name, part in zip(split_names, parts)}
        for warning in empty_splits(sizes, parsed, len({key(r) for r in records}), by.value).values():
            typer.secho(f"warning: {warning}", fg="yellow", err=True)
