"""Progress of a long import, with intake's counts (published, duplicates, rejected)."""

from __future__ import annotations

from services.intake.service_layer.handlers import IntakeOutcome
from shared.progress import Progress


def counts_text(outcome: IntakeOutcome, *, dry_run: bool = False) -> str:
    if dry_run:
        return f"{outcome.published:,} events, {outcome.rejected:,} rejected"
    return f"{outcome.published:,} published, {outcome.duplicates:,} duplicates, {outcome.rejected:,} rejected"


class ImportProgress(Progress):
    """``update`` after each batch; ``position``/``total`` are bytes read of the file when known."""

    def __init__(self, label: str, total: int | None, *, dry_run: bool = False, **kwargs: object) -> None:
        super().__init__(label, total, **kwargs)  # type: ignore[arg-type]
        self.dry_run = dry_run
        self.records = 0

    def update(self, position: int | None, outcome: IntakeOutcome, records: int) -> None:  # type: ignore[override]
        """``records``: items handled in this batch; ``position``: bytes read so far (None: unknown)."""
        self.records += records
        counts = counts_text(outcome, dry_run=self.dry_run)
        done = f"{min(100.0, 100 * position / self.total):.0f}% of the file, " if self.total and position else ""
        super().update(position if self.total and position is not None else self.records, counts,
                       line=f"{self.label}: {done}{self.records:,} records: {counts}")
