"""`ehc deadlines compute --workers N` (issue 12): the cases computed by N processes give the output of
one process, in content and in order, and the same errors: a bad line exits 2 before any output,
naming the first bad line wherever it is; a case the calendar cannot reach exits 2 after the cases
before it. Chunks are made small here so that every worker gets many of them."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from services.deadlines.adapters.records import record_to_json
from services.deadlines.domain.synthetic import synthetic_case
from services.deadlines.entrypoints import compute_run
from services.deadlines.entrypoints.cli import deadlines_app

ROOT = Path(__file__).resolve().parents[3]
AS_OF = "2026-11-02"
RUNNER = CliRunner()


def corpus(cases: int, seed: int, blank: bool = True) -> list[str]:
    """Whole synthetic histories in recorded order (cases interleaved), with a blank line (which the
    reading of subjects leaves to the whole reader) unless ``blank`` is false."""
    rng = random.Random(seed)
    events = sorted((e for n in range(cases) for e in synthetic_case(n, rng)), key=lambda e: e.recorded_at)
    lines = [json.dumps(record_to_json(e)) for e in events]
    if blank:
        lines.insert(4, "")
    return lines


def envelope(subject: str, id_: str, occurred_on: str) -> str:
    return json.dumps({"specversion": "1.0", "id": id_, "source": "cms/test", "type": "ehc.request.received",
                       "subject": subject, "time": "2026-01-05T10:00:00Z",
                       "data": {"occurred_on": occurred_on, "route": "request", "requested_by": "parent"}})


def run(lines: list[str], workers: int) -> Any:
    result = RUNNER.invoke(deadlines_app, ["compute", "--as-of", AS_OF, "--workers", str(workers)],
                           input="\n".join(lines) + "\n")
    assert multiprocessing.active_children() == []  # every child has ended
    return result


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute_run, "CHUNK", 7)


@pytest.mark.parametrize(("workers", "blank"), [(2, True), (2, False), (3, True)])
def test_the_output_of_n_workers_is_the_output_of_one(workers: int, blank: bool) -> None:
    lines = corpus(150, seed=21, blank=blank)
    one, many = run(lines, 1), run(lines, workers)
    assert one.exit_code == 0 and many.exit_code == 0, many.stderr
    deadlines = [json.loads(line) for line in one.stdout.splitlines()]
    assert len(deadlines) > 1500 and len({d["case_id"] for d in deadlines}) == 150
    assert [json.loads(line) for line in many.stdout.splitlines()] == deadlines
    assert many.stdout == one.stdout  # byte for byte, in the same order
    assert many.stderr == one.stderr


def test_more_workers_than_chunks_is_fine() -> None:
    lines = corpus(5, seed=2)
    assert run(lines, 4).stdout == run(lines, 1).stdout != ""


def _broken(lines: list[str], index: int, occurred_on: str = "2026-02-30") -> None:
    event = json.loads(lines[index])
    event["data"]["occurred_on"] = occurred_on
    lines[index] = json.dumps(event)


@pytest.mark.parametrize("bad", [
    {30: "date", 300: "date"},  # two bad lines, read by whichever workers own their cases
    {300: "date", 30: "not json"},  # the first is refused by this process, the later one by a worker
    {30: "date", 300: "not json"},  # a worker finds the first; this process, reading subjects, the later
    {700: "not json", 701: "date"},
    {len(corpus(150, seed=21)) - 1: "date"},
    {12: "bytes"},
])
def test_a_bad_line_is_named_as_with_one_worker_and_nothing_is_written(bad: dict[int, str]) -> None:
    lines = corpus(150, seed=21)
    for index, kind in bad.items():
        if kind == "date":
            _broken(lines, index)
        elif kind == "not json":
            lines[index] = "{not json"
    if "bytes" in bad.values():
        bad_line = lines[12].encode().replace(b'"source": "', b'"source": "\xff', 1)  # the subject is fine
        data = ("\n".join(lines) + "\n").encode().replace(lines[12].encode(), bad_line)
        results = [RUNNER.invoke(deadlines_app, ["compute", "--as-of", AS_OF, "--workers", str(w)], input=data)
                   for w in (1, 2)]
    else:
        results = [run(lines, workers) for workers in (1, 2)]
    first = min(bad) + 1
    for result in results:
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.startswith(f"error: line {first}: ")
    assert results[0].stderr == results[1].stderr


def test_a_case_the_calendar_cannot_reach_stops_after_the_cases_before_it() -> None:
    lines = corpus(150, seed=21)
    lines.insert(2, envelope("case-0000090x", "far-1", "9999-12-30"))  # uncomputable, an early line
    lines.append(envelope("case-0000060x", "far-2", "9999-12-31"))  # uncomputable, the first in case order
    one, two = run(lines, 1), run(lines, 2)
    assert one.exit_code == 2 and two.exit_code == 2
    assert one.stderr.startswith("error: line 3: cannot compute the deadlines of case case-0000090x")
    assert two.stderr == one.stderr
    written = [json.loads(line)["case_id"] for line in one.stdout.splitlines()]
    assert written and max(written) < "case-0000060x" and "case-0000059" in written
    assert two.stdout == one.stdout


def test_a_grouping_the_records_contradict_is_done_again_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = corpus(60, seed=8)
    read_subject = compute_run._subject

    def misread(line: str | bytes) -> Any:  # as if the plain decoder read some lines' subjects otherwise
        found = read_subject(line)
        return compute_run._Subject("0" + found.subject) if b"request.received" in line else found  # type: ignore

    expected = run(lines, 1)
    monkeypatch.setattr(compute_run, "_subject", misread)
    again = run(lines, 2)
    assert again.exit_code == 0 and again.stdout == expected.stdout and again.stderr == expected.stderr


def test_lines_the_subject_reader_doubts_are_read_whole_and_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = corpus(60, seed=9, blank=False)
    read_subject = compute_run._subject

    def doubt(line: str | bytes) -> Any:  # as if odd JSON: the line goes to the whole reader in this process
        if b"advice" in line:  # type: ignore[operator]
            raise msgspec.DecodeError("doubted")
        return read_subject(line)

    expected = run(lines, 1)
    monkeypatch.setattr(compute_run, "_subject", doubt)
    again = run(lines, 2)
    assert sum("advice" in line for line in lines) > 20
    assert again.exit_code == 0 and again.stdout == expected.stdout and again.stderr == expected.stderr


@pytest.mark.parametrize("lines", [[], [""], corpus(1, seed=4)], ids=["nothing", "a blank line", "one case"])
def test_too_little_for_two_workers_is_computed_alike(lines: list[str]) -> None:
    one, two = run(lines, 1), run(lines, 2)
    assert two.exit_code == one.exit_code == 0
    assert two.stdout == one.stdout and two.stderr == one.stderr


def test_workers_must_be_at_least_one() -> None:
    result = run(corpus(3, seed=1), 0)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Invalid value for '--workers'" in result.stderr


def test_by_default_large_inputs_use_every_usable_cpu_up_to_four() -> None:
    usable = len(os.sched_getaffinity(0))
    assert compute_run.auto_workers(compute_run.AUTO_MIN_LINES - 1) == 1
    assert compute_run.auto_workers(compute_run.AUTO_MIN_LINES) == min(usable, compute_run.AUTO_MAX_WORKERS)


COMMAND = [sys.executable, "-c", "from services.cli import app; app()", "deadlines", "compute", "--as-of", AS_OF]


@pytest.fixture(scope="module")
def large_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Past the size from which the command uses every CPU by default; its output (over 10 MB) cannot
    wait in the pipes."""
    lines = corpus(2_200, seed=5)
    assert len(lines) >= compute_run.AUTO_MIN_LINES
    path = tmp_path_factory.mktemp("compute") / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_command_with_two_workers_writes_the_same_bytes_as_one(large_input: Path) -> None:
    """The real command in its own process (not the test runner's stdout); by default it takes two workers here."""
    outputs = []
    for args in (["--workers", "1"], ["--workers", "2"], []):
        with large_input.open("rb") as feed:
            outputs.append(subprocess.run(COMMAND + args, stdin=feed, capture_output=True, cwd=ROOT, timeout=300,
                                          check=False))
    assert all(done.returncode == 0 for done in outputs), [done.stderr for done in outputs]
    assert outputs[0].stdout.count(b"\n") > 20_000
    assert outputs[1].stdout == outputs[0].stdout and outputs[2].stdout == outputs[0].stdout
    assert outputs[1].stderr == outputs[0].stderr == outputs[2].stderr


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return False


def _poll(condition: Any, what: str, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
def test_the_output_streams_while_the_workers_compute_and_they_end_with_the_command(large_input: Path) -> None:
    with large_input.open("rb") as feed:
        command = subprocess.Popen(COMMAND + ["--workers", "2"], stdin=feed, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert command.stdout is not None
        _poll(lambda: select.select([command.stdout], [], [], 0)[0], "the first deadlines on stdout")
        # Nothing read yet, and more output than the pipes hold: the workers cannot be done
        workers = _children(command.pid)
        assert len(workers) == 2
        command.kill()  # the command dies without a word to its workers: they must not linger
        command.wait(timeout=60)
        _poll(lambda: not any(map(_running, workers)), "the workers ended")
    finally:
        command.kill()
        command.wait(timeout=60)
        command.stdout.close()  # type: ignore[union-attr]
