"""Progress of a long job (an import, a rebuild): a rich progress bar on a terminal, a line every
few seconds otherwise (logs, CI), always on stderr so that stdout stays for data."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


class Progress:
    """``update(completed, text)`` as work is done; ``close()`` at the end. ``total`` may be unknown."""

    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None, every_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, tty: bool | None = None) -> None:
        self.label = label
        self.total = total if total else None
        self.stream = stream if stream is not None else sys.stderr
        self.every_seconds = every_seconds
        self.clock = clock
        self._last = clock()
        self._bar: Any = None
        self._task: Any = None
        if self.stream.isatty() if tty is None else tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[text]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=Console(file=self.stream), transient=False)
            self._task = self._bar.add_task(label, total=self.total, text="")
            self._bar.start()

    def update(self, completed: int, text: str = "", line: str | None = None) -> None:
        """``line``: what to print instead of the default ``label: completed/total text`` line."""
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, text=text)
            return
        now = self.clock()
        if now - self._last < self.every_seconds:
            return
        self._last = now
        if line is None:
            of = f"/{self.total:,}" if self.total else ""
            line = f"{self.label}: {completed:,}{of}" + (f": {text}" if text else "")
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            if self.total:
                self._bar.update(self._task, completed=self.total)
            self._bar.stop()
            self._bar = None
