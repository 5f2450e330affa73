"""Fixtures of the fault tests: their own Kafka and PostgreSQL for the session (started here,
stopped at the end), the GOV.UK Notify stand-in, one :class:`Pipeline` per test, and the report of
figures written to ``var/faults/report.json`` and ``report.md`` (and shown after the run)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from tests.faults.infra import FaultInfra
from tests.faults.pipeline import Pipeline
from tests.notifier.conftest import EMAIL_TEMPLATE, SECRET, SERVICE_ID
from tests.notifier.e2e.conftest import GENERIC_SMS
from tests.notifier.notify_stub import NotifyStub, ServerThread
from tests.paths import REPO

REPORT_DIR = REPO / "var" / "faults"
FIGURES: list[dict[str, Any]] = []


@pytest.fixture(scope="session")
async def fault_infra() -> AsyncIterator[FaultInfra]:
    infra = FaultInfra.from_environment()
    await infra.start_kafka()
    await infra.start_postgres()
    try:
        yield infra
    finally:
        await infra.stop_kafka()
        await infra.stop_postgres()


@pytest.fixture(scope="session")
def fault_notify() -> Iterator[tuple[NotifyStub, str]]:
    stub = NotifyStub(SERVICE_ID, [SECRET], (GENERIC_SMS, EMAIL_TEMPLATE))
    server = ServerThread(stub.app).start()
    yield stub, server.url
    server.stop()


@pytest.fixture(scope="session")
def fault_report() -> Iterator[list[dict[str, Any]]]:
    yield FIGURES
    if FIGURES:
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        (REPORT_DIR / "report.json").write_text(json.dumps(FIGURES, indent=2, default=str) + "\n")
        (REPORT_DIR / "report.md").write_text(markdown(FIGURES))


@pytest.fixture
def pipeline(fault_infra: FaultInfra, fault_notify: tuple[NotifyStub, str], fault_report: list[dict[str, Any]],
             request: pytest.FixtureRequest) -> Callable[[], AbstractAsyncContextManager[Pipeline]]:
    """A pipeline for the test; the services' logs stay in var/faults/logs/<test>/ for a look afterwards."""
    stub, url = fault_notify
    stub.reset()
    logs = REPORT_DIR / "logs" / request.node.name
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    return lambda: Pipeline(fault_infra, stub, url, logs, request.node.name)


def markdown(figures: list[dict[str, Any]]) -> str:
    lines = ["# Fault rehearsal figures", "",
             "| test | cases | events sent / stored | deadlines (engine mismatches) | texts required / sent "
             "(missing, duplicated, interrupted by a kill) | dead letters | stuck | lag at end | seconds "
             "| published again after a kill or broker restart (case, deadline events) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for f in figures:
        if "events_sent" not in f:
            continue
        dead = ", ".join(f"{t.split('.')[-2]} {n}" for t, n in f.get("dead_letters", {}).items() if n) or "0"
        lines.append(
            f"| {f['test']} | {f['cases']} | {f['events_sent']} / {f['events_stored']} | {f['deadlines_stored']} "
            f"({f['deadline_mismatches']}) | {f['texts_required']} / {f['texts_sent']} ({f['texts_missing']}, "
            f"{f['texts_duplicated']}, {f.get('texts_interrupted', 0)}) | {dead} | {f['notifications_stuck']} | "
            f"{sum(f['lag_end'].values())} | "
            f"{f['duration_s']} | {f.get('case_events_republished', 0)}, "
            f"{f.get('deadline_events_republished', 0)} |")
    lines += ["", "| test | fault | recovery s (restart to caught up) | caught up | detail |", "|---|---|---|---|---|"]
    for f in figures:
        for fault in f.get("faults", []):
            detail = ", ".join(f"{k} {v}" for k, v in fault["detail"].items())
            outstanding = "" if fault["caught_up"] else f" ({'; '.join(fault['outstanding'])[:120]})"
            lines.append(f"| {f['test']} | {fault['fault']} | {fault['recovery_s']} | "
                         f"{'yes' if fault['caught_up'] else 'NO' + outstanding} | {detail} |")
    api = [f for f in figures if "api_cases" in f]
    if api:
        lines += ["", "| test | API requests generated | operations | server errors | seconds |",
                  "|---|---|---|---|---|"]
        lines += [f"| {f['test']} | {f['api_cases']} | {f['api_operations']} | {f['api_server_errors']} | "
                  f"{f['api_seconds']} |" for f in api]
    for f in figures:
        if f.get("problems"):
            lines += ["", f"## {f['test']}: problems", *(f"- {p}" for p in f["problems"])]
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("fault rehearsal figures (var/faults/report.md)")
        for line in markdown(FIGURES).splitlines():
            terminalreporter.write_line(line)
