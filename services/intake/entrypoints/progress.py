"""Progress of a long import: a progress bar on a terminal, a line of counts every few seconds
otherwise (logs, CI), always on stderr so that stdout stays for data (``--dry-run``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from services.intake.service_layer.handlers import IntakeOutcome


def counts_text(outcome: IntakeOutcome, *, dry_run: bool = False) -> str:
    if dry_run:
        return f"{outcome.published:,} events, {outcome.rejected:,} rejected"
    return f"{outcome.published:,} published, {outcome.duplicates:,} duplicates, {outcome.rejected:,} rejected"


class ImportProgress:
    """``update`` after each batch; ``position``/``total`` are bytes read of the file when known."""

    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None, every_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, tty: bool | None = None, dry_run: bool = False) -> None:
        self.label = label
        self.total = total if total else None
        self.stream = stream if stream is not None else sys.stderr
        self.every_seconds = every_seconds
        self.clock = clock
        self.dry_run = dry_run
        self.records = 0
        self._last = clock()
        self._bar: Any = None
        self._task: Any = None
        is_tty = self.stream.isatty() if tty is None else tty
        if is_tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=False)
            self._task = self._bar.add_task(label, total=self.total, counts="")
            self._bar.start()

    def update(self, position: int | None, outcome: IntakeOutcome, records: int) -> None:
        """``records``: items handled in this batch; ``position``: bytes read so far (None: unknown)."""
        self.records += records
        counts = counts_text(outcome, dry_run=self.dry_run)
        if self._bar is not None:
            self._bar.update(self._task, completed=position if self.total else self.records, counts=counts)
            return
        now = self.clock()
        if now - self._last < self.every_seconds:
            return
        self._last = now
        done = f"{min(100.0, 100 * position / self.total):.0f}% of the file, " if self.total and position else ""
        print(f"{self.label}: {done}{self.records:,} records: {counts}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            if self.total:
                self._bar.update(self._task, completed=self.total)
            self._bar.stop()
            self._bar = None
