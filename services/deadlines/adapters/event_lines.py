"""Canonical case events as JSON lines into engine records, fast: the command line's reader.

The shared pydantic contracts stay the one validator. Reading an event through pydantic and then
``record_from_event`` costs about 25 µs a line, more than the engine spends on it, so this module
compiles the same contracts (the models' own fields, types, constraints and defaults) into a small
checker that only ever *accepts*: a line it is sure of becomes a :class:`CaseEventRecord` at once
(orjson, then plain type and range checks); anything else (an unknown field, a type it does not
know, a bad value, odd JSON) is handed to pydantic, which accepts it or names the problem exactly as
before. A field whose type or validator it does not understand makes its event type go to pydantic
every time. ``tests/deadlines/unit/test_event_lines.py`` checks, on valid and broken events, that
whatever the fast path accepts pydantic accepts with the same record.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import fields, make_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

import orjson
from annotated_types import MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from services.deadlines.adapters.records import record_from_event
from services.deadlines.domain.events import CaseEventRecord
from shared.contracts import EVENT_MODELS, parse_case_event
from shared.contracts.envelope import _aware

NO: Any = object()  # "not sure": the line goes to pydantic
Check = Callable[[Any], Any]  # a value from orjson -> the typed value, or NO

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
# RFC 3339 as producers write it; other spellings pydantic may still accept go to pydantic.
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})",
                       re.ASCII)
_SEEN_MAX = 100_000
_dates: dict[str, date] = {}  # a few thousand distinct days: one shared object each


def _date(value: Any) -> Any:
    found = _dates.get(value) if type(value) is str else NO
    if found is None:
        if not _DATE.fullmatch(value):
            return NO
        try:
            found = date.fromisoformat(value)
        except ValueError:
            return NO
        if len(_dates) >= _SEEN_MAX:
            _dates.clear()
        _dates[value] = found
    return found


def _aware_datetime(value: Any) -> Any:
    if type(value) is not str or not _DATETIME.fullmatch(value):
        return NO
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return NO


def _bool(value: Any) -> Any:
    return value if type(value) is bool else NO


def _optional(check: Check) -> Check:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)
    return optional


def _choice(allowed: dict[str, Any]) -> Check:
    def choice(value: Any) -> Any:
        return allowed.get(value, NO) if type(value) is str else NO
    return choice


def _string(min_length: int = 0, max_length: int | None = None, pattern: str | None = None) -> Check:
    # pydantic matches patterns with Rust's regex, where `$` is the end of the text: \Z in Python.
    # ASCII classes are never wider than Rust's Unicode ones, so the fast path only ever accepts less.
    matcher = None if pattern is None else re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", pattern), re.ASCII).match
    top = max_length if max_length is not None else float("inf")

    # Values seen before (a case id on each of its events, team ids, ...) are accepted from a bounded
    # cache, and given back as the one string object (a case id is held once, not once an event).
    seen: dict[str, str] = {}

    def string(value: Any) -> Any:
        found = seen.get(value) if type(value) is str else NO
        if found is not None:
            return found
        if not min_length <= len(value) <= top or (matcher is not None and not matcher(value)):
            return NO
        if len(seen) >= _SEEN_MAX:
            seen.clear()
        seen[value] = value
        return value
    return string


def _str_list(value: Any) -> Any:
    if type(value) is not list or any(type(item) is not str for item in value):
        return NO
    return value


class _Unknown(Exception):
    """A type or constraint the fast path does not know: that event type always goes to pydantic."""


_STRING_CONSTRAINTS = ("StringConstraints", "_PydanticGeneralMetadata")  # pydantic's, from Field(pattern=...)


def _settings(constraint: Any) -> list[str]:
    """The names of the settings a constraint object sets (not None)."""
    names = getattr(constraint, "__dataclass_fields__", None) or getattr(constraint, "__dict__", {})
    return [name for name in names if getattr(constraint, name, None) is not None]


def _check_for(annotation: Any, metadata: list[Any]) -> Check:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        if metadata:
            raise _Unknown(annotation)
        inner = next(a for a in args if a is not type(None))
        if hasattr(inner, "__metadata__"):  # Optional[Annotated[str, constraints]]
            return _optional(_check_for(inner.__origin__, list(inner.__metadata__)))
        return _optional(_check_for(inner, []))
    if annotation is date and not metadata:
        return _date
    if annotation is datetime and [getattr(m, "func", None) for m in metadata] == [_aware]:
        return _aware_datetime
    if annotation is bool and not metadata:
        return _bool
    if origin is Literal and not metadata and all(type(a) is str for a in args):
        return _choice({a: a for a in args})
    if isinstance(annotation, type) and issubclass(annotation, Enum) and not metadata:
        if not all(type(m.value) is str for m in annotation):
            raise _Unknown(annotation)
        return _choice({m.value: m for m in annotation})
    if annotation is str:
        limits: dict[str, Any] = {}
        for m in metadata:
            for name in ("min_length", "max_length", "pattern"):
                if getattr(m, name, None) is not None:
                    limits[name] = getattr(m, name)
            known = isinstance(m, MinLen | MaxLen) or type(m).__name__ in _STRING_CONSTRAINTS
            extra = [k for k in _settings(m) if k not in ("min_length", "max_length", "pattern")] if known else []
            if not known or extra:
                raise _Unknown(m)
        return _string(**limits)
    if origin is list and args == (str,) and not metadata:
        return _str_list
    raise _Unknown(annotation)


def _fields(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[tuple[str, Check, bool, FieldInfo]]:
    """(name, check, required, field) for every field of a model without validators of its own."""
    decorators = model.__pydantic_decorators__
    if any(getattr(decorators, kind) for kind in ("validators", "field_validators", "root_validators",
                                                   "model_validators")):
        raise _Unknown(model)
    if model.model_config.get("extra") != "forbid" or model.model_config.get("strict"):
        raise _Unknown(model)
    out = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        if field.alias not in (None, name) or field.validation_alias is not None:
            raise _Unknown(name)
        out.append((name, _check_for(field.annotation, list(field.metadata)), field.is_required(), field))
    return out


# Building a frozen dataclass costs one object.__setattr__ a field; as model.make_deadline does for
# Deadline, records are built as a twin with the same slots and relabelled (a test compares them).
_MutableRecord = make_dataclass("_MutableRecord", [(f.name, f.type) for f in fields(CaseEventRecord)], slots=True,
                                eq=False, repr=False)


def _record(*values: Any) -> CaseEventRecord:
    record = _MutableRecord(*values)
    record.__class__ = CaseEventRecord
    return record  # type: ignore[no-any-return]


_RECORD_ENVELOPE = ("id", "subject", "time", "supersedes")  # what the record takes from the envelope


def _reader(model: type[BaseModel]) -> Callable[[dict[str, Any]], CaseEventRecord | None] | None:
    """A fast reader for one event type, or None when some part of it is only pydantic's to judge."""
    try:
        envelope = {name: (check, required, field) for name, check, required, field in
                    _fields(model, skip=("type", "data"))}
        data_fields = {name: (check, required, field) for name, check, required, field in
                       _fields(model.model_fields["data"].annotation)}
    except _Unknown:
        return None
    if not all(name in envelope for name in _RECORD_ENVELOPE) or "occurred_on" not in data_fields:
        return None
    env_names = frozenset(envelope) | {"type", "data"}
    data_names = frozenset(data_fields)
    (check_id, id_required, _), (check_subject, subject_required, _), (check_time, time_required, _) = (
        envelope["id"], envelope["subject"], envelope["time"])
    check_supersedes, supersedes_required, _ = envelope["supersedes"]
    check_occurred_on, occurred_on_required, _ = data_fields["occurred_on"]
    if not (id_required and subject_required and time_required and occurred_on_required) or supersedes_required:
        return None
    others = [(name, check, required) for name, (check, required, _) in envelope.items()
              if name not in _RECORD_ENVELOPE]
    data_checks = [(name, check, required, field) for name, (check, required, field) in data_fields.items()
                   if name != "occurred_on"]

    def read(event: dict[str, Any]) -> CaseEventRecord | None:
        raw = event.get("data")
        if type(raw) is not dict or not env_names.issuperset(event) or not data_names.issuperset(raw):
            return None
        # a missing field gives NO, which no check accepts
        id_, subject, time = check_id(event.get("id", NO)), check_subject(event.get("subject", NO)), \
            check_time(event.get("time", NO))
        supersedes = check_supersedes(event["supersedes"]) if "supersedes" in event else None
        occurred_on = check_occurred_on(raw.get("occurred_on", NO))
        if id_ is NO or subject is NO or time is NO or supersedes is NO or occurred_on is NO:
            return None
        for name, check, required in others:  # checked only (source, specversion, ...)
            if name in event:
                if check(event[name]) is NO:
                    return None
            elif required:
                return None
        data = {}
        for name, check, required, field in data_checks:
            if name in raw:
                value = check(raw[name])
                if value is NO:
                    return None
            elif required:
                return None
            else:
                value = field.get_default(call_default_factory=True)
            data[name] = value
        return _record(id_, subject, event["type"], occurred_on, time, data, supersedes)
    return read


READERS = {type_: reader for type_, model in EVENT_MODELS.items() if (reader := _reader(model)) is not None}


def fast_record(line: bytes | str) -> CaseEventRecord | None:
    """The record of a line the fast path is sure of; None: ask :func:`contract_record`."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(event) is not dict:
        return None
    type_ = event.get("type")
    reader = READERS.get(type_) if type(type_) is str else None
    return None if reader is None else reader(event)


def contract_record(line: bytes | str) -> CaseEventRecord:
    """Through the shared pydantic contracts (the reference route): raises pydantic's ValidationError."""
    return record_from_event(parse_case_event(line))
