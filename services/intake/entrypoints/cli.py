"""``ehc intake serve`` and ``ehc intake import`` (mounted by the project's CLI as ``ehc intake``).

``ehc intake import FILE --format sen2|csv [--mapping NAME] [--dry-run]`` converts a DfE SEN2
return (XML, or the COLLECT CSV export as a folder or a .zip) or a CSV file read through a source
mapping into canonical events and publishes them through intake (de-duplicated, rejected
records to ehc.intake.dead-letter), in batches, each one in Kafka before the next is read.
``--dry-run`` prints the canonical events as JSON lines on stdout instead and needs no broker or
database. Progress and the summary go to stderr with ``--dry-run``, the summary to stdout otherwise.

An SEN2 XML return is all or nothing: it is read whole first, and a file that stops being readable
(a bad byte, cut short) publishes nothing and exits 2 naming the line; ``--skip-bad`` publishes the
records before that point instead (the unread rest goes to the dead-letter topic) and the summary
says where reading stopped. A record that is readable but invalid is dead-lettered either way.

Exit codes: 0 done (rejected records are in the dead-letter topic, not lost); 1 Kafka or the
database failed (every batch counted in the summary is in Kafka; importing again finishes the job
and publishes nothing twice); 2 bad arguments, settings or a file that cannot be read; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO

import typer

from services.intake.config import ConfigError, available_mappings, case_id_key
from services.intake.domain.generic_csv import CsvFormatError, iter_csv_stream
from services.intake.domain.mapping import MappingError
from services.intake.domain.results import Rejection
from services.intake.domain.sen2 import Sen2FormatError, Sen2Import, iter_sen2_csv, iter_sen2_xml
from services.intake.entrypoints.progress import ImportProgress
from services.intake.service_layer.handlers import Converted, IntakeOutcome
from shared.contracts import ContactsUpdated
from shared.settings import Settings, SettingsError

intake_app = typer.Typer(help="Intake: case events from councils' systems.", no_args_is_help=True)

MAX_REASONS_SHOWN = 12


class Format(StrEnum):
    sen2 = "sen2"
    csv = "csv"


class ImportFileError(Exception):
    """The file, the arguments or the settings cannot be used (exit 2, one line)."""


def _settings() -> Settings:
    from shared.logging import configure_logging
    from shared.settings import load_settings

    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    return settings


def _fail(command: str, message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"ehc intake {command}: {' '.join(str(message).split())}", err=True)
    return typer.Exit(code=code)


# --- serve ----------------------------------------------------------------------------------

@intake_app.command("serve")
def serve() -> None:
    """Run intake: source topics, the webhook and the outbox relay."""

    async def run() -> None:
        from services.intake.bootstrap import bootstrap
        from shared.runtime import serve as serve_runtime

        # Kafka clients must be created inside the running event loop.
        await serve_runtime(bootstrap(settings).runtime())

    try:
        settings = _settings()
        asyncio.run(run())
    except (SettingsError, MappingError) as exc:
        raise _fail("serve", str(exc)) from None


# --- import ---------------------------------------------------------------------------------

class _CountingReader:
    """A binary file that counts the bytes read (for the progress bar)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.position += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._raw.readline(size)
        self.position += len(data)
        return data

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _CountingReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class ImportSource:
    """A file opened for import: its items, what it is, and how far it has been read."""

    name: str
    description: str
    items: Iterator[Converted]
    total_bytes: int | None = None
    reader: _CountingReader | None = None
    sen2: Sen2Import | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def position(self) -> int | None:
        return self.reader.position if self.reader is not None else None

    def close(self) -> None:
        for close in self.closers:
            close()


def open_source(path: Path, fmt: Format, *, key: bytes, mapping_name: str | None, lea: str | None,
                settings: Settings) -> ImportSource:
    """Open ``path`` for import; raises ImportFileError (or ConfigError) with a one-line reason."""
    if not path.exists():
        raise ImportFileError(f"{path}: no such file or folder")
    if lea is not None and not (len(lea) == 3 and lea.isdigit()):
        raise ImportFileError("--lea is a 3-digit DfE LA number, e.g. 919")
    if fmt is Format.sen2:
        if mapping_name is not None:
            raise ImportFileError("--mapping is for --format csv (an SEN2 return needs no mapping)")
        return _open_sen2(path, key, lea)
    if lea is not None:
        raise ImportFileError("--lea is for --format sen2")
    if mapping_name is None:
        known = ", ".join(sorted(_mappings(settings)))
        raise ImportFileError(f"--format csv needs --mapping NAME (known mappings: {known})")
    mapping = _mappings(settings).get(mapping_name)
    if mapping is None:
        raise ImportFileError(f"no mapping named {mapping_name!r} (known: {', '.join(sorted(_mappings(settings)))})")
    if mapping.mode == "canonical":
        raise ImportFileError(f"mapping {mapping_name!r} is canonical: it reads JSON messages, not CSV rows")
    if not path.is_file():
        raise ImportFileError(f"{path}: not a file")
    reader = _CountingReader(_open(path))
    try:
        items = _peeked(iter_csv_stream(reader, path.name, mapping, key))  # type: ignore[arg-type]
    except BaseException:
        reader.close()
        raise
    return ImportSource(path.name, f"CSV, mapping {mapping.name}", items, path.stat().st_size, reader,
                        closers=[reader.close])


def _mappings(settings: Settings) -> dict[str, Any]:
    try:
        return available_mappings(settings)
    except MappingError as exc:
        raise ImportFileError(str(exc)) from None


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except PermissionError:
        raise ImportFileError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def _open_sen2(path: Path, key: bytes, lea: str | None) -> ImportSource:
    if path.is_dir() or zipfile.is_zipfile(path):
        try:
            imported = iter_sen2_csv(path, case_id_key=key, lea=lea)
        except (Sen2FormatError, zipfile.BadZipFile) as exc:
            raise ImportFileError(str(exc)) from None
        return ImportSource(path.name, "SEN2 COLLECT CSV export", _not_sen2_check(path, imported), sen2=imported)
    reader = _CountingReader(_open(path))
    try:
        imported = iter_sen2_xml(reader, case_id_key=key, lea=lea)  # type: ignore[arg-type]
        items = _not_sen2_check(path, imported)
    except BaseException:
        reader.close()
        raise
    return ImportSource(path.name, "SEN2 XML return", items, path.stat().st_size, reader, imported,
                        closers=[reader.close])


def _peeked(items: Iterator[Converted]) -> Iterator[Converted]:
    """Read the first item now, so that a file whose header is unusable fails before anything is published."""
    try:
        first = next(items, None)
    except CsvFormatError as exc:
        raise ImportFileError(str(exc)) from None
    return iter(()) if first is None else chain([first], items)


def _not_sen2_check(path: Path, imported: Sen2Import) -> Iterator[Converted]:
    """A file that is not an SEN2 return at all is an argument error, not a dead letter."""
    try:
        first = next(imported, None)
    except (Sen2FormatError, zipfile.BadZipFile) as exc:
        raise ImportFileError(str(exc)) from None
    if first is None:
        return iter(())
    if isinstance(first, Rejection) and imported.header is None and imported.counts.persons == 0:
        raise ImportFileError(f"{path.name}: {first.reason.split(';')[0]}")
    return chain([first], imported)


def readable_to_the_end(source: ImportSource) -> ImportSource | None:
    """An SEN2 XML return is read whole before anything is published: ImportFileError when it stops
    being readable (nothing was published); ``None`` when there is nothing to check (other formats,
    whose bad records are dead-lettered one by one), otherwise the (now used) source."""
    if source.sen2 is None or source.reader is None:
        return None
    try:
        for _ in source.items:
            pass
    finally:
        source.close()
    if source.sen2.stopped is not None:
        raise ImportFileError(f"{source.name}: {source.sen2.stopped}; nothing was published (correct the file, or "
                              "publish the records before that point with --skip-bad)")
    return source


def _dry_run(source: ImportSource, progress: ImportProgress, out: TextIO, batch: int) -> IntakeOutcome:
    outcome = IntakeOutcome()
    pending = 0
    write = out.write
    for item in source.items:
        if isinstance(item, Rejection):
            outcome.rejected += 1
            outcome.reasons[item.reason] += 1
        elif isinstance(item, ContactsUpdated):
            outcome.contacts += 1  # personal data: counted, never printed
        else:
            write(item.to_json().decode() + "\n")
            outcome.published += 1
        pending += 1
        if pending == batch:
            progress.update(source.position(), outcome, pending)
            pending = 0
    progress.update(source.position(), outcome, pending)
    out.flush()
    return outcome


async def publish_source(settings: Settings, source: ImportSource, progress: ImportProgress | None = None,
                         total: IntakeOutcome | None = None) -> IntakeOutcome:
    """Import an opened file through intake (build, start without consuming, import, stop); the totals
    are added up in ``total`` as batches reach Kafka."""
    from services.intake.bootstrap import bootstrap
    from services.intake.service_layer.imports import import_items

    def on_batch(so_far: IntakeOutcome, records: int) -> None:
        if progress is not None:
            progress.update(source.position(), so_far, records)

    intake = bootstrap(settings)
    await intake.start(consume=False)
    try:
        return await import_items(intake.service, intake.relay, source.items, input_source=source.name,
                                  batch_size=settings.intake.import_batch_size, total=total, on_batch=on_batch)
    finally:
        await intake.stop()


def summary_lines(source: ImportSource, outcome: IntakeOutcome, seconds: float, *, dry_run: bool,
                  finished: bool = True) -> list[str]:
    """The end-of-import summary: what was published, skipped and rejected, and why."""
    verb = "Dry run of" if dry_run else "Imported" if finished else "Stopped importing"
    lines = [f"{verb} {source.name} ({source.description}) in {seconds:.1f} s"]
    if dry_run:
        lines.append(f"  {outcome.published:,} canonical events printed (nothing published)")
    else:
        rate = f" ({outcome.published / seconds:,.0f}/s)" if seconds > 0 and outcome.published else ""
        lines.append(f"  {outcome.published:,} events published{rate}")
        lines.append(f"  {outcome.duplicates:,} duplicates skipped (already received)")
    if outcome.contacts or outcome.contacts_duplicates:
        where = "found (not printed: personal data)" if dry_run else "sent to ehc.contacts"
        repeated = f", {outcome.contacts_duplicates:,} already sent" if outcome.contacts_duplicates else ""
        lines.append(f"  {outcome.contacts:,} contact updates {where}{repeated}")
    where = "" if dry_run else ", in ehc.intake.dead-letter"
    before = f" ({outcome.rejected_before:,} of them from an earlier import)" if outcome.rejected_before else ""
    lines.append(f"  {outcome.rejected:,} records rejected{where}{before}" + (":" if outcome.rejected else ""))
    common = outcome.reasons.most_common(MAX_REASONS_SHOWN)
    lines.extend(f"    {count:>8,}  {reason}" for reason, count in common)
    if len(outcome.reasons) > len(common):
        others = sum(outcome.reasons.values()) - sum(count for _, count in common)
        lines.append(f"    {others:>8,}  (other reasons: {len(outcome.reasons) - len(common)})")
    if source.sen2 is not None and source.sen2.stopped is not None:
        lines.append(f"  The file stopped being readable: {source.sen2.stopped}; nothing after it was read")
    if source.sen2 is not None:
        counts = source.sen2.counts
        lines.append(f"  SEN2: {counts.persons:,} persons ({counts.persons_rejected:,} rejected), "
                     f"{counts.requests:,} requests ({counts.requests_rejected:,} rejected)")
        if counts.notes:
            lines.append("  Seen but not turned into events:")
            lines.extend(f"    {count:>8,}  {note}" for note, count in counts.notes.most_common())
    return lines


@intake_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="An SEN2 XML return, a folder or .zip of its CSV export, or a CSV.")],
    format_: Annotated[Format, typer.Option("--format", help="sen2: an SEN2 return; csv: a CSV read with --mapping.",
                                            case_sensitive=False)],
    mapping: Annotated[str | None, typer.Option("--mapping", help="The source mapping of a CSV file.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the canonical events as JSON lines; "
                                          "publish nothing (no broker or database needed).")] = False,
    lea: Annotated[str | None, typer.Option("--lea", help="SEN2: the 3-digit LA number, if the header "
                                            "lacks it or is wrong.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="SEN2 XML: publish the records before the point "
                                           "where a damaged file stops being readable, instead of nothing.")] = False,
) -> None:
    """Convert a file into canonical case events and publish them (or print them with --dry-run)."""
    from shared.logging import configure_logging

    try:
        settings = _settings()
    except SettingsError as exc:
        raise _fail("import", str(exc)) from None
    # Progress and the summary speak for the import; only warnings and errors are logged.
    level = settings.logging.level if settings.logging.level in ("WARNING", "ERROR") else "WARNING"
    configure_logging(level, settings.logging.json_output)
    try:
        key = case_id_key(settings, warn=lambda message: typer.echo(f"warning: {message}", err=True))

        def opened() -> ImportSource:
            return open_source(file, format_, key=key, mapping_name=mapping, lea=lea, settings=settings)

        source = opened()
        if not skip_bad and readable_to_the_end(source) is not None:
            source = opened()
    except (ImportFileError, ConfigError, MappingError) as exc:
        raise _fail("import", str(exc)) from None
    started = time.monotonic()
    progress = ImportProgress(f"importing {source.name}", source.total_bytes, stream=sys.stderr, dry_run=dry_run)
    outcome = IntakeOutcome()
    code, error = 0, ""
    try:
        if dry_run:
            outcome = _dry_run(source, progress, sys.stdout, settings.intake.import_batch_size)
        else:
            asyncio.run(publish_source(settings, source, progress, outcome))
    except (ImportFileError, ConfigError, MappingError, Sen2FormatError, CsvFormatError) as exc:
        code, error = 2, str(exc)
    except KeyboardInterrupt:
        code, error = 130, "interrupted"
    except BrokenPipeError:  # `... --dry-run | head`: the reader has all it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python flushes stdout at exit)
        source.close()
        return
    except Exception as exc:  # Kafka or the database: say so in one line, never a traceback
        code, error = 1, f"Kafka or the database failed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
    finally:
        progress.close()
        source.close()
    lines = summary_lines(source, outcome, time.monotonic() - started, dry_run=dry_run, finished=code == 0)
    if code and not dry_run and (outcome.published or outcome.rejected):
        lines.append("  Every batch counted above is in Kafka; importing again finishes the job and publishes "
                     "nothing twice.")
    typer.echo("\n".join(lines), err=dry_run or code != 0)
    if code:
        raise _fail("import", error, code)
