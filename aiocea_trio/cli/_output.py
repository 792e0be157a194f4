"""What commands print for scripts (``--format json|csv``) and how tables fit a terminal.

Machine formats never go through rich: no markup, no colour, no wrapping. Values are the
exchange's own: Binance sends prices and quantities as strings, and they are written as
those exact strings (never turned into floats). Every line is flushed as it is written,
so that ``watch --format json | jq`` or ``| head -n 3`` see rows as they come; a closed
pipe raises `BrokenPipeError`, which the CLI turns into a quiet exit 141.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
import click
from rich.console import Console
from rich.table import Table

__all__ = ["FORMATS", "Column", "CsvStream", "fitted_table", "print_csv", "print_json"]

#: The choices of every ``--format`` option; ``table`` is the default.
FORMATS: Final = ("table", "json", "csv")


def _write(text: str) -> None:
    """Plain text on stdout, flushed (click's runner swaps `sys.stdout`, so look it up)."""
    click.echo(text, nl=False, color=False)


def _json_value(value: Any) -> Any:
    """Values JSON can hold as they are; anything else as its text."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


def print_json(document: Any, *, line: bool = False) -> None:
    """One JSON document (indented), or one compact line of a JSON-lines stream."""
    if line:
        _write(json.dumps(_json_value(document), ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        _write(json.dumps(_json_value(document), ensure_ascii=False, indent=2) + "\n")


def csv_cell(value: Any) -> str:
    """A CSV cell: strings as they are, ``true``/``false``, nested values as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(_json_value(value), ensure_ascii=False, separators=(",", ":"))


def columns_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every key of ``rows``, in the order they first appear."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


class CsvStream:
    """CSV rows on stdout: a header row first, then each row flushed as it is written.

    The header is the first batch's keys (`columns_of`) unless given; keys a later row
    lacks are empty cells, keys it adds are left out.
    """

    def __init__(self, header: Sequence[str] | None = None) -> None:
        self.header: list[str] | None = list(header) if header is not None else None
        self.started = False

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self.header is None:
            self.header = columns_of(rows)
        if not self.started:
            writer.writerow(self.header)
            self.started = True
        for row in rows:
            writer.writerow([csv_cell(row.get(key)) for key in self.header])
        _write(buffer.getvalue())


def print_csv(rows: Sequence[Mapping[str, Any]], header: Sequence[str] | None = None) -> None:
    """A whole CSV document: header row, then ``rows``."""
    CsvStream(header).write(rows)


@attrs.frozen
class Column:
    """A table column. Numbers never lose digits: at worst they fold onto a second
    line. ``optional`` columns are the ones left out, right to left, when the
    table is wider than the terminal."""

    name: str
    numeric: bool = True
    optional: bool = False


def fitted_table(
    console: Console, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> Table:
    """A table that fits ``console``'s width without cutting a price.

    Optional columns are dropped (rightmost first) while the table is too wide; the
    caption says which. If it is still too wide, numeric cells fold instead of being
    cut with an ellipsis.
    """
    shown = list(range(len(columns)))
    dropped: list[str] = []
    while True:
        cells = [[row[i] for i in shown] for row in rows]
        table = _table(title, [columns[i] for i in shown], cells)
        optional = [i for i in shown if columns[i].optional]
        wide = console.options.update_width(1_000_000)
        if not optional or console.measure(table, options=wide).maximum <= console.width:
            break
        shown.remove(optional[-1])
        dropped.insert(0, columns[optional[-1]].name)
    if dropped:
        table.caption = f"{', '.join(dropped)} left out to fit {console.width} columns"
        table.caption_justify = "left"
    return table


def _table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        if column.numeric:
            # Digits have no spaces to wrap at: "fold" breaks them onto a second line
            # rather than cutting them (no_wrap would crop, rich's default adds "…").
            table.add_column(column.name, justify="right", overflow="fold")
        else:
            table.add_column(column.name, justify="left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table
