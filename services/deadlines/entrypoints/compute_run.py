"""How ``ehc deadlines compute`` runs its cases: in one process, or in ``--workers N`` processes.

Either way the output is the same, in content and in order: the cases in case-id order, a chunk of
:data:`CHUNK` cases written as soon as it is computed; the data-quality warnings after them; a bad
line stops the run before anything is written, naming the first bad line; a case the calendar
cannot reach stops it after the cases before it, naming the line of the first event of the earliest
such case (tests/deadlines/unit/test_compute_workers.py compares the two on a generated corpus).

One process (:func:`run_serial`): every line read into a record (the msgspec fast path, pydantic for
any line it doubts), grouped by case, then the cases computed.

N processes (:func:`run_parallel`, on systems with ``fork``): this process reads every line only as
far as its ``subject`` (a msgspec Struct of that one field, about a tenth of reading a whole event)
and groups the line numbers by case; the cases, in case-id order, are cut into chunks dealt out in
turn to N forked workers, which see the lines and groups through the fork (nothing pickled). Each
worker first reads and checks every line of its own cases and says "all good" or its first bad line;
only when every worker has answered "all good" is anything written, so a bad line is refused as in
one process (the earliest bad line of all is named). Then each worker computes its chunks and hands
each over its own pipe; this process writes them in turn. A worker waits on its pipe (a megabyte
where Linux allows) until its chunk is taken, so none is more than a few chunks ahead: memory stays
bounded and the output streams. This process never builds a record (it keeps the lines, so it has
little to free at the end) and the workers leave with ``os._exit`` (multiprocessing's fork start),
so no heap is torn down piece by piece.

The grouping by ``subject`` is checked, not trusted: a worker compares each record's case id with
the group it came in; any difference (JSON that the contracts read differently from a plain
decoder) and the run starts again in one process, which groups by the records themselves.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any, NamedTuple

import msgspec

from services.deadlines.adapters.event_lines import fast_record
from services.deadlines.domain import CaseEventRecord, compute, compute_with_quality
from services.deadlines.entrypoints.cli import InputError, parse_line

CHUNK = 128  # cases computed and written at a time (about 300 KB of output, 1 MB for whole histories: a pipe)
AUTO_MIN_LINES = 20_000  # below this, one process: forking is not worth it
AUTO_MAX_WORKERS = 4

Write = Callable[[bytes], Any]
Line = str | bytes


class Setup(NamedTuple):
    """What every case is computed with."""

    history: Any
    calendar: Any
    as_of: date
    terms: Any
    due_soon_days: int | None


class ComputeError(Exception):
    """A case the engine cannot compute (a date near year 9999); the message names its line."""


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def auto_workers(line_count: int) -> int:
    """Processes to use when ``--workers`` is not given: every usable CPU (at most
    :data:`AUTO_MAX_WORKERS`) for an input of :data:`AUTO_MIN_LINES` lines or more, else one."""
    if line_count < AUTO_MIN_LINES or not can_fork():
        return 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(usable, AUTO_MAX_WORKERS))


def record_of(line_no: int, line: Line) -> CaseEventRecord | None:
    """The record of one line (None for a blank line); raises :class:`InputError` naming the problem."""
    record = fast_record(line)
    if record is None:  # not sure: the shared pydantic contracts decide, and name the problem
        if not line.strip():  # a blank line (never a record) is skipped
            return None
        try:
            record = parse_line(line_no, line.decode("utf-8") if isinstance(line, bytes) else line)
        except UnicodeDecodeError:
            raise InputError(line_no, "not valid UTF-8") from None
    return record


_encode_lines = msgspec.json.Encoder().encode_lines


def compute_chunk(case_ids: Sequence[str], events_of: Callable[[str], list[CaseEventRecord]],
                  setup: Setup) -> tuple[list[bytes], list[str], str | None]:
    """(the JSON lines of these cases' deadlines, their data-quality warnings, the first case that
    could not be computed or None); the lines and warnings are those of the cases before it."""
    # msgspec writes a Deadline dataclass as Deadline.to_dict() does (dates ISO, status its value, flags a
    # list), one JSON line per deadline: a case's lines in one call
    history, calendar, as_of, terms, due_soon_days = setup
    out: list[bytes] = []
    warnings: list[str] = []
    for case_id in case_ids:
        try:
            deadlines, quality = compute_with_quality(events_of(case_id), history, calendar, as_of, terms=terms,
                                                      due_soon_working_days=due_soon_days)
        except (ValueError, ArithmeticError):  # a history the engine cannot compute (a date near year 9999)
            return out, warnings, case_id
        out.append(_encode_lines(deadlines))
        # Data that cannot be true (issue 11): on stderr, so that stdout stays one deadline per line.
        warnings.extend(f"{w.severity}: case {case_id}: {w.code}: {w.message}" for w in quality)
    return out, warnings, None


def uncomputable(by_case: dict[str, tuple[int, list[CaseEventRecord]]], setup: Setup) -> str:
    """Which case could not be computed, named by the line of its first event (the earliest such line)."""
    history, calendar, as_of, terms, due_soon_days = setup
    for case_id, (line_no, events) in sorted(by_case.items(), key=lambda item: item[1][0]):
        try:
            compute(events, history, calendar, as_of, terms=terms, due_soon_working_days=due_soon_days)
        except (ValueError, ArithmeticError) as exc:
            problem = "a date beyond the calendar (year 9999)" if isinstance(exc, OverflowError) else str(exc)
            return f"line {line_no}: cannot compute the deadlines of case {case_id}: {problem}"
    return "cannot compute the deadlines of these events"


def _chunks(case_ids: list[str]) -> list[list[str]]:
    return [case_ids[start:start + CHUNK] for start in range(0, len(case_ids), CHUNK)]


# -- one process -------------------------------------------------------------------------------------


def read_cases(lines: Iterable[Line]) -> dict[str, tuple[int, list[CaseEventRecord]]]:
    """Every line, validated, grouped by case: case id -> (the line of its first event, its events).
    A bad line stops here (:class:`InputError`), before anything is written."""
    by_case: dict[str, tuple[int, list[CaseEventRecord]]] = {}
    gc.disable()  # nothing read here is cyclic
    try:
        for line_no, line in enumerate(lines, start=1):
            record = record_of(line_no, line)
            if record is None:
                continue
            case = by_case.get(record.case_id)
            if case is None:
                by_case[record.case_id] = (line_no, [record])
            else:
                case[1].append(record)
    finally:
        gc.enable()
    return by_case


def run_serial(lines: Iterable[Line], setup: Setup, write: Write) -> list[str]:
    """Compute every case in this process, writing each chunk as it is done; the warnings, to print after."""
    by_case = read_cases(lines)
    warnings: list[str] = []
    # The records and deadlines are acyclic: the cyclic collector would only walk them again and again.
    gc.freeze()
    gc.disable()
    try:
        for chunk in _chunks(sorted(by_case)):
            out, found, failed = compute_chunk(chunk, lambda case_id: by_case[case_id][1], setup)
            write(b"".join(out))
            warnings.extend(found)
            if failed is not None:
                raise ComputeError(uncomputable({c: by_case[c] for c in by_case if c >= failed}, setup))
            for case_id in chunk:  # its input dropped once done
                del by_case[case_id]
    finally:
        gc.enable()
        gc.unfreeze()
    return warnings


# -- N processes -------------------------------------------------------------------------------------


class _Subject(msgspec.Struct, gc=False):
    subject: str


_subject = msgspec.json.Decoder(_Subject).decode
_ALL_GOOD = "all good"
_REGROUP = "regroup"  # a record's case id is not the subject it was grouped by


def _group(lines: list[Line]) -> dict[str, list[int]]:
    """Case id -> the indexes of its lines. Only the subject of a line is read, unless it has no
    plain one (:func:`_subjects`)."""
    by_case: dict[str, list[int]] = {}
    try:  # every line a plain event: the subjects in one go
        subjects: Iterable[tuple[int, str]] = enumerate([_subject(line).subject for line in lines])
    except (msgspec.DecodeError, UnicodeDecodeError):
        subjects = _subjects(lines)
    for index, case_id in subjects:
        indexes = by_case.get(case_id)
        if indexes is None:
            by_case[case_id] = [index]
        else:
            indexes.append(index)
    return by_case


def _subjects(lines: list[Line]) -> Iterator[tuple[int, str]]:
    """(index, case id) of every line but blank ones; a line without a plain subject is read whole (its
    worker reads it again: such lines are rare), and a bad one stops the run, unless an earlier line
    is bad too: the earliest is named."""
    for index, line in enumerate(lines):
        try:
            yield index, _subject(line).subject
        except (msgspec.DecodeError, UnicodeDecodeError):  # a blank line, odd JSON, no subject: read it whole
            try:
                record = record_of(index + 1, line)
            except InputError:
                for earlier, line_before in enumerate(lines[:index]):
                    record_of(earlier + 1, line_before)  # raises for the earliest bad line
                raise
            if record is not None:
                yield index, record.case_id


class _Job(NamedTuple):
    """What every worker sees (forked, not copied)."""

    lines: list[Line]
    by_case: dict[str, list[int]]
    chunks: list[list[str]]
    workers: int
    setup: Setup


def _own_records(job: _Job, worker: int) -> tuple[dict[str, list[CaseEventRecord]], Any]:
    """The records of this worker's cases, and "all good", "regroup" or (its first bad line, the problem)."""
    lines, by_case = job.lines, job.by_case
    records: dict[str, list[CaseEventRecord]] = {}
    bad: tuple[int, str] | None = None
    regroup = False
    for chunk in job.chunks[worker::job.workers]:
        for case_id in chunk:
            events = []
            for index in by_case[case_id]:
                try:
                    record = record_of(index + 1, lines[index])
                except InputError as exc:
                    bad = min(bad or (exc.line_no, exc.problem), (exc.line_no, exc.problem))
                    continue
                if record.case_id != case_id:  # type: ignore[union-attr]  (blank lines were never grouped)
                    regroup = True
                events.append(record)
            records[case_id] = events  # type: ignore[assignment]
    return records, bad or (_REGROUP if regroup else _ALL_GOOD)


def _child(job: _Job, worker: int, pipe: int, others: list[int]) -> None:
    """A forked worker: its verdict on its lines, then each of its chunks as computed. It first closes
    the ends of the other workers' pipes it was born with: should this process die, each worker's
    pipe has no reader left, and the worker stops at its next message. Ctrl-C is this process's to
    handle (it ends its workers), not each worker's with a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for end in others:
        os.close(end)
    records, verdict = _own_records(job, worker)
    _send(pipe, [], verdict)
    if verdict != _ALL_GOOD:
        return
    for chunk in job.chunks[worker::job.workers]:
        out, warnings, failed = compute_chunk(chunk, records.__getitem__, job.setup)
        _send(pipe, out, (warnings, failed))
        if failed is not None:
            return


# A worker's message: the size of its output (JSON lines to write as they are) and of the rest (msgspec
# JSON), then both. Written with writev from the pieces and read into one reused buffer: no copy on the
# way, no allocation a chunk (multiprocessing's Connection builds each message up in a BytesIO).
_HEADER = struct.Struct("<QQ")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _send(pipe: int, out: list[bytes], rest: Any) -> None:
    meta = _encode(rest)
    views = [memoryview(piece) for piece in (_HEADER.pack(sum(map(len, out)), len(meta)), *out, meta) if piece]
    while views:  # a blocking pipe takes everything at once, unless a signal interrupts it
        written = os.writev(pipe, views)
        while written:
            if written >= len(views[0]):
                written -= len(views.pop(0))
            else:
                views[0], written = views[0][written:], 0


class _Receiver:
    """The messages of one worker, read into a buffer kept from one message to the next."""

    def __init__(self, process: Any, pipe: int) -> None:
        self.process = process
        self.file = open(pipe, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        self.buffer = bytearray(1 << 20)

    def _read(self, size: int) -> memoryview:
        if len(self.buffer) < size:
            self.buffer = bytearray(size)
        view = memoryview(self.buffer)[:size]
        done = 0
        while done < size:
            got = self.file.readinto(view[done:])
            if not got:
                self.process.join()
                raise RuntimeError(f"a compute worker stopped unexpectedly (exit code {self.process.exitcode})")
            done += got
        return view

    def receive(self, write: Write | None = None) -> Any:
        """The rest of the next message, its output handed to ``write``."""
        out_size, meta_size = _HEADER.unpack(self._read(_HEADER.size))
        if out_size:
            write(self._read(out_size))  # type: ignore[misc]
        return _decode(self._read(meta_size))

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()


def run_parallel(lines: list[Line], workers: int, setup: Setup, write: Write) -> list[str]:
    """Compute every case in ``workers`` processes (this one and forked children), writing the chunks
    in order as they are done; the warnings, to print after."""
    gc.disable()  # nothing read or computed is cyclic; and the children share the parent's pages
    try:
        by_case = _group(lines)
        chunks = _chunks(sorted(by_case))
        workers = min(workers, len(chunks))
        if workers < 2:
            return run_serial(lines, setup, write)
        job = _Job(lines, by_case, chunks, workers, setup)
        gc.freeze()
        try:
            return _run_team(job, write)
        finally:
            gc.unfreeze()
    finally:
        gc.enable()


def _run_team(job: _Job, write: Write) -> list[str]:
    context = multiprocessing.get_context("fork")
    team: list[_Receiver] = []
    try:
        for worker in range(job.workers):
            receive, send = os.pipe()
            _widen(send)
            process = context.Process(target=_child, daemon=True, name=f"ehc-compute-{worker}",
                                      args=(job, worker, send, [receive, *(member.fileno() for member in team)]))
            try:
                process.start()
            finally:
                os.close(send)
            team.append(_Receiver(process, receive))
        verdicts = [member.receive() for member in team]
        bad = [tuple(verdict) for verdict in verdicts if isinstance(verdict, list)]
        if bad:
            raise InputError(*min(bad))
        if _REGROUP in verdicts:
            _stop(team)
            return run_serial(job.lines, job.setup, write)
        warnings: list[str] = []
        for number in range(len(job.chunks)):
            found, failed = team[number % job.workers].receive(write)
            warnings.extend(found)
            if failed is not None:
                _stop(team)
                raise ComputeError(uncomputable(_records_from(job, failed), job.setup))
        for member in team:
            member.process.join()
        return warnings
    finally:
        _stop(team)


def _widen(pipe: int) -> None:
    """A pipe of a megabyte where the system allows (Linux): a worker can finish its next chunk while
    the one before it is written, without waiting to hand it over."""
    import fcntl  # POSIX only, as fork is

    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:
        try:
            fcntl.fcntl(pipe, set_size, 1 << 20)
        except OSError:  # above /proc/sys/fs/pipe-max-size, or not a pipe
            pass


def _stop(team: list[_Receiver]) -> None:
    """End the workers still running (only ever after a stop, or when they are done) and close their pipes."""
    for member in team:
        if member.process.is_alive():
            member.process.terminate()
        member.process.join()
        member.close()


def _records_from(job: _Job, first: str) -> dict[str, tuple[int, list[CaseEventRecord]]]:
    """Case id -> (the line of its first event, its events) of the cases from ``first`` on (all good lines)."""
    found: dict[str, tuple[int, list[CaseEventRecord]]] = {}
    for case_id, indexes in job.by_case.items():
        if case_id >= first:
            events = [record_of(index + 1, job.lines[index]) for index in indexes]
            found[case_id] = (indexes[0] + 1, events)  # type: ignore[arg-type]
    return found
