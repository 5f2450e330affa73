"""A generic CSV importer driven by a source mapping: each row is one source message.

The header names the columns; a row becomes a flat dict (column -> text) that the mapping reads
exactly as it reads a JSON message (paths are column names). A row that cannot be converted
becomes a Rejection whose original bytes are the header line and the row, so the dead letter is
readable on its own, and whose location is ``"line N"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from services.intake.domain.csv_rows import iter_csv_rows
from services.intake.domain.mapping import SourceMapping
from services.intake.domain.results import IntakeItem, Rejection


class CsvFormatError(ValueError):
    """A CSV file that cannot be read as records at all (no header, repeated column names)."""


def iter_csv(
    path: str | Path, mapping: SourceMapping, case_id_key: bytes, *, now: datetime | None = None
) -> Iterator[IntakeItem]:
    """Convert every row of a CSV file with ``mapping``; rows that fail become Rejections.

    Raises ``OSError`` when the file cannot be opened and :class:`CsvFormatError` when its header
    is unusable; never raises for a bad row.
    """
    if mapping.mode == "canonical":
        raise ValueError(f"mapping {mapping.name!r} is canonical: it takes JSON messages, not CSV rows")
    file = Path(path)
    stream = file.open("rb")  # raises now, not at the first next(), when the file is missing
    return _rows(stream, file.name, mapping, case_id_key, now)


def iter_csv_stream(
    stream: BinaryIO, name: str, mapping: SourceMapping, case_id_key: bytes, *, now: datetime | None = None
) -> Iterator[IntakeItem]:
    """As :func:`iter_csv`, from an open binary stream (closed when the rows are done); ``name``
    names the file in error messages."""
    if mapping.mode == "canonical":
        raise ValueError(f"mapping {mapping.name!r} is canonical: it takes JSON messages, not CSV rows")
    return _rows(stream, name, mapping, case_id_key, now)


def _rows(stream: BinaryIO, name: str, mapping: SourceMapping, case_id_key: bytes,
          now: datetime | None) -> Iterator[IntakeItem]:
    with stream:
        rows = iter_csv_rows(stream)
        header_row = next(rows, None)
        if header_row is None:
            return
        if header_row.values is None:
            raise CsvFormatError(f"{name}: the header line cannot be read ({header_row.problem})")
        header = [h.strip() for h in header_row.values]
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise CsvFormatError(f"{name}: the header repeats column(s) {', '.join(repeated)}")
        for row in rows:
            original = header_row.raw + row.raw
            location = f"line {row.line}"
            if row.values is None:
                yield Rejection(reason=row.problem or "unreadable CSV record", original=original, location=location)
                continue
            if len(row.values) > len(header):
                yield Rejection(reason=f"row has {len(row.values)} fields, the header has {len(header)}",
                                original=original, location=location)
                continue
            record = dict(zip(header, row.values, strict=False))
            yield from mapping.convert_record(record, original=original, case_id_key=case_id_key,
                                              location=location, now=now)
