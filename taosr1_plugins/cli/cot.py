"""`taosr1 cot generate`: teacher chain-of-thought with retrieval augmentation and label-consistency filtering."""

from __future__ import annotations

from pathlib import Path

import typer

from taosr1_plugins.cli.options import option, parse_options
from taosr1_plugins.cot.config import CotOptions

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("generate")
def generate(
    data: Path = typer.Option(..., "--data", help="Labelled records (JSONL) to write CoT for."),
    out: Path = typer.Option(..., "--out", help="Output JSONL: the records whose trace was kept, with `cot` set."),
    teacher: str = option(CotOptions, "teacher"),
    pool: Path | None = typer.Option(None, "--pool", help="Labelled reference pool for retrieval (default: --data)."),
    k: int = option(CotOptions, "k", min=0),
    retries: int = option(CotOptions, "retries", min=0),
    batch_size: int = option(CotOptions, "batch_size", min=1),
    hint: bool = option(CotOptions, "hint_on_retry", "--hint/--no-hint"),
    max_words: int | None = option(CotOptions, "max_words", min=1),
    teacher_option: list[str] = typer.Option([], "--option", "-o", help="Teacher option key=value (repeatable), e.g. -o model=gpt-4o."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished OUT. An interrupted run is always resumed."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Generate CoT for labelled records; rerun the same command to resume an interrupted run."""
    from pydantic import ValidationError
    from rich.console import Console
    from taosr1_plugins.core.display import print_table

    from taosr1_plugins.cot.dropped import nothing_kept
    from taosr1_plugins.cot.generate import generate_cot, output_paths
    from taosr1_plugins.data.validation import read_checked_records
    from taosr1_plugins.errors import OutputExistsError, UserError, first_problem
    from taosr1_plugins.core.jsonl import check_outputs
    from taosr1_plugins.cot.teachers import TeacherError, get_teacher
    from taosr1_plugins.cli import fail, file_errors

    # user errors (a bad line, an unknown teacher, ...) are reported by the command group: one line, status 2
    teacher_options = parse_options(teacher_option)
    from taosr1_plugins.core.options import check_options

    # an unknown teacher, or an option its options model refuses, before a file is read or a model loads
    check_options("teacher", teacher, teacher_options)
    with file_errors():
        check_outputs(output_paths(out).values(), [data, pool])
        records = read_checked_records(data, require_label=True)
        pool_records = read_checked_records(pool, unique_ids=False) if pool else None
    try:
        teacher_impl = get_teacher(teacher, **teacher_options)
    except ValidationError as exc:  # a teacher without a declared options model refused one: name it
        where, message = first_problem(exc, whole="options")
        raise UserError(f"teacher {teacher!r} option {where!r}: {message}") from exc
    except (TeacherError, TypeError) as exc:  # a plugin teacher's own refusal of its options
        raise TeacherError(f"teacher {teacher!r}: {exc}") from exc

    options = CotOptions(teacher=teacher, k=k, retries=retries, batch_size=batch_size, hint_on_retry=hint,
                         max_words=max_words)
    try:
        report = generate_cot(
            records, teacher_impl, out, pool=pool_records, options=options,
            teacher_name=teacher, overwrite=overwrite, progress=progress,
        )
    except OutputExistsError as exc:
        raise OutputExistsError(f"{exc} (use --overwrite)") from exc
    except TeacherError as exc:  # mid-run (endpoint down after every retry): status 1, and how to go on
        fail(f"{exc}\nFinished records are saved; rerun the same command to resume.")

    console = Console(stderr=True)
    print_table(report_table(report), console)
    paths = output_paths(out)
    console.print(f"wrote {report.kept} records to {paths['out']}; report {paths['report']}; ledger {paths['ledger']}")
    if warning := nothing_kept(report.to_dict(), paths["ledger"]):
        typer.secho(f"warning: {warning}", fg="yellow", err=True)


def report_table(report):
    from rich.table import Table

    table = Table(title=f"CoT ({report.teacher}): {report.kept}/{report.total} kept")
    for column in ("scheme", "level", "total", "kept first try", "kept after retry", "dropped"):
        table.add_column(column, justify="left" if column in ("scheme", "level") else "right")
    for c in report.per_level:
        table.add_row(c.scheme, f"{c.level} ({c.name})", str(c.total), str(c.kept_first), str(c.kept_retry), str(c.dropped))
    table.add_section()
    table.add_row("all", "", str(report.total), str(report.kept_first), str(report.kept_retry), str(report.dropped))
    return table
