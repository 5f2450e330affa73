"""The service's hot path encodes deadline events without building them through pydantic, and
reads stored history back without re-validating it; these tests prove the results equal the
pydantic-built ones on generated corpora (the events parsed back by the shared contract parser,
their JSON compared byte for byte)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from engine_testkit import CALENDAR, HISTORY, TERMS
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_properties import AS_OF, EVENTS, histories

from services.deadlines.adapters.records import _data_model, record_data, record_data_validated
from services.deadlines.domain import compute
from services.deadlines.service_layer.changes import Change, StoredDeadline, diff
from services.deadlines.service_layer.handlers import (
    EVENT_NAMESPACE,
    BatchResult,
    DeadlinesService,
    _discriminator,
    deadline_data,
)
from shared.contracts import DeadlineEvent
from shared.contracts.deadline_events import parse_deadline_topic_event
from shared.settings import KafkaSettings

NOW = datetime(2026, 11, 27, 12, 0, 3, 123456, tzinfo=UTC)
ROUTINGS = st.sampled_from([(None, None, None), ("team-1", "cw-7", "area-2"), ("team-1", None, None)])


def _service() -> DeadlinesService:
    return DeadlinesService(None, KafkaSettings(), None, None, [20, 10, 5, 0])  # type: ignore[arg-type]


def validated_event(change: Change, routing: tuple[str | None, str | None, str | None],
                    now: datetime) -> DeadlineEvent:
    """The event as the service built it before, every field validated by pydantic."""
    import uuid

    team_id, caseworker_id, area_id = routing
    data = deadline_data(change.deadline.to_dict(), team_id, caseworker_id, area_id)
    if change.previous is not None:
        data = data.model_copy(update={"previous_due_on": change.previous.due_on,
                                       "previous_status": change.previous.status})
    data = data.model_copy(update={"change_reason": change.reason, "change_detail": change.detail or None})
    event_id = uuid.uuid5(EVENT_NAMESPACE, "|".join(
        [data.deadline_id, change.event_type, data.due_on.isoformat(), data.status, str(data.reminder_offset_days),
         _discriminator(change.previous)]))
    return DeadlineEvent(id=str(event_id), source="ehc/deadlines", subject=data.case_id, time=now,
                         type=change.event_type, data=data)  # type: ignore[arg-type]


def _stored_variants(computed: list[Any], pick: int) -> dict[str, StoredDeadline]:
    """Some earlier state of the case: nothing, the same, other dates, other statuses, other versions."""
    out: dict[str, StoredDeadline] = {}
    for i, d in enumerate(computed):
        mode = (i + pick) % 5
        if mode == 0:
            continue
        due = d.due_on if mode != 2 else date.fromordinal(d.due_on.toordinal() + 3)
        status = d.status.value if mode != 3 else ("open" if d.status.value != "open" else "met")
        version = d.ruleset_version if mode != 4 else "england-2014.0"
        out[d.deadline_id] = StoredDeadline(d.deadline_id, due, status, version, d.rule_id)
    out["case-p:gone.rule:1"] = StoredDeadline("case-p:gone.rule:1", date(2026, 1, 5), "open", None, "gone.rule")
    return out


TIMES = st.sampled_from([NOW, NOW.replace(microsecond=0), NOW.astimezone(timezone(timedelta(hours=1))),
                         datetime(2027, 1, 4, 9, 30, tzinfo=ZoneInfo("Europe/London"))])


@settings(max_examples=200, deadline=None)
@given(events=histories(), as_of=AS_OF, pick=st.integers(0, 4), routing=ROUTINGS, events_changed=st.booleans(),
       now=TIMES)
def test_deadline_events_equal_the_pydantic_built_ones(events: list[Any], as_of: date, pick: int,
                                                       routing: tuple[str | None, str | None, str | None],
                                                       events_changed: bool, now: datetime) -> None:
    computed = compute(events, HISTORY, CALENDAR, as_of, terms=TERMS)
    changes = [c for c in diff(_stored_variants(computed, pick), computed, events_changed) if c.deadline is not None]
    service = _service()
    for change in changes:
        fast = service._change_event(change, routing, {}, now, BatchResult())
        expected = validated_event(change, routing, now)
        assert fast.to_json() == expected.to_json()  # the same bytes on the wire
        assert fast.key() == expected.key()
        assert parse_deadline_topic_event(fast.to_json()) == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data(), event_type=st.sampled_from(sorted(EVENTS)), on=st.dates(date(2024, 1, 1), date(2027, 12, 31)))
def test_stored_history_reads_back_as_validation_would(data: st.DataObject, event_type: str, on: date) -> None:
    fields = data.draw(EVENTS[event_type])
    stored = _data_model(event_type).model_validate({"occurred_on": on, **fields}).model_dump(mode="json")
    if data.draw(st.booleans()):  # history stored before an optional field existed
        optional = [k for k, f in _data_model(event_type).model_fields.items() if not f.is_required()]
        for k in optional[: data.draw(st.integers(0, len(optional)))]:
            stored.pop(k, None)
    fast = record_data(event_type, stored)
    validated = record_data_validated(event_type, stored)
    assert fast == validated
    assert {k: type(v) for k, v in fast.items()} == {k: type(v) for k, v in validated.items()}
