"""Canonical events (the shared pydantic contracts) into the engine's input records.

The contracts are the one validator: the CLI, the Kafka consumer and the stored history all go
through them, so what the engine sees is exactly what the wire format allows.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Callable
from datetime import UTC, date
from enum import Enum
from functools import cache
from typing import Any, NamedTuple

import msgspec

from services.deadlines.adapters.event_lines import fast_record
from services.deadlines.domain.events import CaseEventRecord
from shared.contracts import EVENT_MODELS, CaseEventEnvelope, parse_case_event


class ConsumedCaseEvent(NamedTuple):
    """A consumed case event the fast path decoded: its id, its case, and its row as the service
    stores it (what ``handlers.event_row`` gives for the pydantic envelope of the same bytes)."""

    id: str
    subject: str
    row: dict[str, Any]


class _Source(msgspec.Struct):
    source: str


_source = msgspec.json.Decoder(_Source).decode


def decode_case_event(value: bytes) -> ConsumedCaseEvent | CaseEventEnvelope:
    """A consumed case event, by the compute command's msgspec Structs (event_lines.fast_record:
    the shared contracts compiled, accepting no more than they do); whatever they doubt goes to
    the contracts themselves, which accept it or raise as they always did (the same parking
    reason). tests/deadlines/unit/test_case_event_decoding.py holds the two routes equal."""
    record = fast_record(value)
    if record is None:
        return parse_case_event(value)
    occurred_on = record.occurred_on
    return ConsumedCaseEvent(record.id, record.case_id, {
        "event_id": record.id, "case_id": record.case_id, "source": _source(value).source, "type": record.type,
        "occurred_on": occurred_on, "recorded_at": record.recorded_at, "supersedes": record.supersedes,
        # as pydantic's model_dump(mode="json") of the data: occurred_on first, dates ISO, enums their value
        "data": {"occurred_on": occurred_on.isoformat(), **_to_builtins(record.data)}})


_to_builtins = msgspec.to_builtins


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


def record_data_validated(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON back to typed values (dates as ``date``) through the event's own data model."""
    typed = _data_model(event_type).model_validate(data).model_dump()
    typed.pop("occurred_on", None)
    return typed


_Converter = Callable[[Any], Any]


def _converter(annotation: Any) -> _Converter | None:
    """How a stored JSON value of this field becomes what validation would give; None when the
    field holds a JSON-native value as it is (str, int, bool, a list of str, a Literal)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is date:
        return lambda v: date.fromisoformat(v) if isinstance(v, str) else v
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return lambda v, enum=annotation: v if v is None else enum(v)
    if annotation in (str, int, bool) or typing.get_origin(annotation) is typing.Literal or annotation == list[str]:
        return None
    raise TypeError(f"no fast reading of {annotation!r}")


@cache
def _reader(event_type: str) -> tuple[frozenset[str], tuple[tuple[str, _Converter], ...], dict[str, Any]] | None:
    """The fields of an event type's data: their names, their converters, their defaults; None
    when some field needs the model's validation to read back (none does today)."""
    model = _data_model(event_type)
    converters: list[tuple[str, _Converter]] = []
    defaults: dict[str, Any] = {}
    try:
        for name, f in model.model_fields.items():
            if name == "occurred_on":
                continue
            if (convert := _converter(f.annotation)) is not None:
                converters.append((name, convert))
            if not f.is_required():
                defaults[name] = f.get_default(call_default_factory=True)
    except TypeError:
        return None
    return frozenset(model.model_fields), tuple(converters), defaults


def record_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON back to the typed values :func:`record_data_validated` gives (dates as ``date``,
    enums as members, absent optional fields at their defaults), without re-validating what the
    contracts validated when the event came in (a unit test proves the two equal)."""
    reader = _reader(event_type)
    if reader is None or not data.keys() <= reader[0]:
        return record_data_validated(event_type, data)
    names, converters, defaults = reader
    typed = {**defaults, **data} if len(data) < len(names) else dict(data)
    for name, convert in converters:
        if name in typed:
            typed[name] = convert(typed[name])
    for name, value in defaults.items():
        if isinstance(value, (list, dict)) and typed[name] is value:
            typed[name] = copy.copy(value)
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
