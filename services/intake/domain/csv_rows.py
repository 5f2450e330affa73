"""Reading CSV files row by row while keeping each row's original bytes and line number.

Councils' exports come as UTF-8 (with or without a byte-order mark) or Windows-1252 (Excel);
each line is decoded on its own, so one odd byte spoils one row, not the file. A row that the
csv module cannot read (a NUL byte, an over-long field) is reported as a broken row and reading
goes on with the next line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One record: ``values`` (None when the csv module could not read it) and its original bytes."""

    line: int  # the line number (1-based) where the record starts
    values: list[str] | None
    raw: bytes
    problem: str | None = None


class _Lines:
    """Feeds decoded lines to ``csv.reader`` and remembers the raw bytes of the current record."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.line = 0
        self.captured: list[bytes] = []
        self.record_start = 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self._stream.readline()
        if not raw:
            raise StopIteration
        self.line += 1
        if not self.captured:
            self.record_start = self.line
        self.captured.append(raw)
        if self.line == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("cp1252", errors="replace")

    def take(self) -> tuple[int, bytes]:
        raw = b"".join(self.captured)
        self.captured = []
        return self.record_start, raw


def iter_csv_rows(stream: BinaryIO) -> Iterator[CsvRow]:
    """Every non-blank record of a CSV file (the header too, as the first row)."""
    lines = _Lines(stream)
    while True:
        reader = csv.reader(lines)
        try:
            for values in reader:
                line, raw = lines.take()
                if not values or all(not v.strip() for v in values):
                    continue  # a blank line is not a record
                yield CsvRow(line=line, values=values, raw=raw)
            return
        except csv.Error as exc:
            line, raw = lines.take()
            problem = f"unreadable CSV record ({exc})"  # the csv module's messages quote no data
            yield CsvRow(line=line, values=None, raw=raw, problem=problem)
            # a new reader continues with the next line
