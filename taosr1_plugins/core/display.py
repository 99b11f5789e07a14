"""Tables for people that never cut a number short (issue 31 item 7).

rich fits a table into the terminal's width and ends a cell that does not fit with "…" ("0.2…"); printed to a
pipe or a file it assumes 80 columns and does the same. :func:`print_table` prints a rich table whole:

* stdout (the console's file) is not a terminal: as a Markdown table, one line per row, nothing cut, ready to
  paste into an issue or a report;
* a terminal: rich's box, every column folding a cell that does not fit onto the next line instead of cutting it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def cell_text(cell) -> str:
    """A table cell (markup string or rich Text) as plain text."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def markdown_table(table: Table) -> str:
    """``table`` as Markdown: its title, a header, one line per row (sections are not marked), its caption."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", "<br>") for cell in cells) + " |"

    columns = table.columns
    cells = [[cell_text(cell) for cell in column.cells] for column in columns]
    rows = [list(row) for row in zip(*cells)] if cells else []
    aligns = {"left": ":---", "right": "---:", "center": ":---:"}
    lines = []
    if table.title:
        lines += [cell_text(table.title), ""]
    lines.append(line([cell_text(column.header) for column in columns]))
    lines.append("| " + " | ".join(aligns.get(column.justify, "---") for column in columns) + " |")
    lines += [line(row) for row in rows]
    if table.caption:
        lines += ["", cell_text(table.caption)]
    return "\n".join(lines)


def folding(table: Table) -> Table:
    """``table`` with every column folding what does not fit onto further lines (rich's default cuts it with …)."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` whole: Markdown where the console is not a terminal, else rich's box with folding cells."""
    if console is None:
        from rich.console import Console

        console = Console()
    if not console.is_terminal:
        # written to the file directly: a Console would wrap a long line at its width
        console.file.write(markdown_table(table) + "\n")
        console.file.flush()
        return
    console.print(folding(table))
