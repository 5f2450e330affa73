"""Timers' and cancellations' deadline events are encoded from the stored deadline without pydantic:
these tests prove their bytes equal the pydantic-built events' (the route the service took before),
on deadlines the engine computed from generated histories and stored as the service stores them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from engine_testkit import CALENDAR, HISTORY, TERMS
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_properties import AS_OF, histories
from test_fast_events import ROUTINGS, TIMES, _service

from services.deadlines.domain import compute
from services.deadlines.service_layer.changes import Change, StoredDeadline
from services.deadlines.service_layer.handlers import BatchResult, _discriminator, _event_id, deadline_data
from shared.contracts import DeadlineData, DeadlineEvent
from shared.contracts.deadline_events import parse_deadline_topic_event


def pydantic_event(event_type: str, data: DeadlineData, now: datetime, discriminator: str) -> DeadlineEvent:
    """The event as the service built it before: its data validated by pydantic, then the envelope."""
    event_id = _event_id(data.deadline_id, event_type, data.due_on, data.status, data.reminder_offset_days,
                         discriminator)
    return DeadlineEvent(id=event_id, source="ehc/deadlines", subject=data.case_id, time=now, type=event_type,
                         data=data)  # type: ignore[arg-type]


def stored_row(d: Any, routing: tuple[str | None, str | None, str | None], status: str | None = None) -> Any:
    """A deadlines row as the service reads it back (its explanation through the JSON column)."""
    explanation = json.loads(json.dumps(d.to_dict()))
    return SimpleNamespace(case_id=d.case_id, deadline_id=d.deadline_id, rule_id=d.rule_id, due_on=d.due_on,
                           status=status or d.status.value, responsible=d.responsible, kind=d.kind,
                           team_id=routing[0], caseworker_id=routing[1], explanation=explanation)


def assert_same(fast: Any, expected: DeadlineEvent) -> None:
    assert fast.to_json() == expected.to_json()  # the same bytes on the wire
    assert fast.key() == expected.key()
    assert parse_deadline_topic_event(fast.to_json()) == expected


@settings(max_examples=150, deadline=None)
@given(events=histories(), as_of=AS_OF, routing=ROUTINGS, now=TIMES, offset=st.sampled_from([20, 10, 5, 0]),
       status=st.sampled_from([None, "open", "due_soon", "exception"]))
def test_timer_events_equal_the_pydantic_built_ones(events: list[Any], as_of: date,
                                                    routing: tuple[str | None, str | None, str | None],
                                                    now: datetime, offset: int, status: str | None) -> None:
    service = _service()
    for d in compute(events, HISTORY, CALENDAR, as_of, terms=TERMS):
        row = stored_row(d, routing, status)
        for kind in ("reminder", "breach", "nudge"):
            timer = SimpleNamespace(kind=kind, offset_days=offset, due_on=d.due_on,
                                    fire_at=datetime(2026, 11, 27, 8, tzinfo=UTC))
            built = service._timer_event(timer, row)
            if built is None:
                continue
            event_type, stored, _ = built
            discriminator = f"timer:{kind}:{timer.fire_at}"
            fast = service._event(event_type, stored, (row.team_id, row.caseworker_id, None), now, discriminator)
            data = deadline_data(stored, row.team_id, row.caseworker_id, None)
            assert_same(fast, pydantic_event(event_type, data, now, discriminator))


@settings(max_examples=150, deadline=None)
@given(events=histories(), as_of=AS_OF, routing=ROUTINGS, now=TIMES, detail=st.sampled_from(["", "the case closed"]),
       reason=st.sampled_from(["events", "ruleset", "calendar", "time"]))
def test_cancellation_events_equal_the_pydantic_built_ones(events: list[Any], as_of: date,
                                                           routing: tuple[str | None, str | None, str | None],
                                                           now: datetime, detail: str, reason: str) -> None:
    service = _service()
    team_id, caseworker_id, area_id = routing
    for d in compute(events, HISTORY, CALENDAR, as_of, terms=TERMS):
        row = stored_row(d, routing)
        previous = StoredDeadline(d.deadline_id, d.due_on, d.status.value, d.ruleset_version, d.rule_id)
        change = Change("deadline.cancelled", None, previous, reason, detail)
        fast = service._change_event(change, routing, {d.deadline_id: row}, now, BatchResult())
        data = deadline_data({**row.explanation, "status": "cancelled"}, team_id, caseworker_id, area_id)
        data = data.model_copy(update={"previous_due_on": previous.due_on, "previous_status": previous.status,
                                       "change_reason": reason, "change_detail": detail or None})
        assert_same(fast, pydantic_event("deadline.cancelled", data, now, _discriminator(previous)))
