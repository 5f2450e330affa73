"""Canonical events (the shared pydantic contracts) into the engine's input records.

The contracts are the one validator: the CLI, the Kafka consumer and the stored history all go
through them, so what the engine sees is exactly what the wire format allows.
"""

from __future__ import annotations

from datetime import UTC, date
from functools import cache
from typing import Any

from services.deadlines.domain.events import CaseEventRecord
from shared.contracts import EVENT_MODELS, CaseEventEnvelope


@cache
def _data_model(event_type: str) -> Any:
    return EVENT_MODELS[event_type].model_fields["data"].annotation


@cache
def date_fields(event_type: str) -> frozenset[str]:
    """The data fields of an event type that hold dates (besides occurred_on)."""
    model = _data_model(event_type)
    return frozenset(name for name, f in model.model_fields.items()
                     if f.annotation in (date, date | None) and name != "occurred_on")


def record_from_event(event: CaseEventEnvelope) -> CaseEventRecord:
    data = event.data.model_dump()
    data.pop("occurred_on", None)
    return CaseEventRecord(id=event.id, case_id=event.subject, type=event.type, occurred_on=event.data.occurred_on,
                           recorded_at=event.time, data=data, supersedes=event.supersedes)


def record_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON back to typed values (dates as ``date``) through the event's own data model."""
    typed = _data_model(event_type).model_validate(data).model_dump()
    typed.pop("occurred_on", None)
    return typed


def record_from_row(row: Any) -> CaseEventRecord:
    """A row of the service's case history (see adapters/tables.py) as an engine record."""
    recorded_at = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=UTC)
    return CaseEventRecord(id=row.event_id, case_id=row.case_id, type=row.type, occurred_on=row.occurred_on,
                           recorded_at=recorded_at, data=record_data(row.type, row.data), supersedes=row.supersedes)


def record_to_json(record: CaseEventRecord, source: str = "synthetic") -> dict[str, Any]:
    """The inverse of :func:`record_from_event`: an engine record as a canonical case event (a JSON-ready
    dict: dates as ISO strings), e.g. to feed synthetic cases to ``ehc deadlines compute``."""
    data: dict[str, Any] = {"occurred_on": record.occurred_on.isoformat()}
    data.update({k: (v.isoformat() if isinstance(v, date) else v) for k, v in record.data.items()})
    event = {"specversion": "1.0", "id": record.id, "source": source, "type": record.type,
             "subject": record.case_id, "time": record.recorded_at.isoformat(), "data": data}
    if record.supersedes is not None:
        event["supersedes"] = record.supersedes
    return event
