"""Breach timers only for deadlines the engine can breach (found by the fault rehearsals: the
service's timers breached duties the engine keeps open, flagged `completion_not_recorded`, so the
stored status disagreed with the engine's and a breach alert went out for a guess)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from services.deadlines.domain.calendar import WorkingDayCalendar
from services.deadlines.service_layer.timers import plan_timers


@dataclass
class Planned:
    due_on: date
    status: str = "open"
    kind: str = "duty"
    flags: tuple[str, ...] = ()


NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
DUE = date(2026, 4, 20)


def kinds(deadline: Planned) -> set[str]:
    return {t.kind for t in plan_timers(deadline, WorkingDayCalendar(), [10, 3, 0], NOW)}


def test_a_duty_gets_reminders_and_a_breach_timer() -> None:
    assert kinds(Planned(DUE)) == {"reminder", "breach"}


@pytest.mark.parametrize("deadline", [
    Planned(DUE, flags=("completion_not_recorded",)),
    Planned(DUE, kind="guidance", flags=("guidance",)),
    Planned(DUE, kind="window"),
    Planned(DUE, kind="not_before"),
], ids=["completion not recorded", "guidance", "window", "not before"])
def test_what_the_engine_never_breaches_gets_no_breach_timer(deadline: Planned) -> None:
    assert "breach" not in kinds(deadline)
