"""Canonical case events as JSON lines into engine records, fast: the command line's reader.

The shared pydantic contracts stay the one validator. Reading an event through pydantic and then
``record_from_event`` costs about 25 µs a line, more than the engine spends on it, so this module
compiles the same contracts (the models' own fields, types, constraints and defaults) into msgspec
Structs, one per event type, tagged by ``type``, that msgspec decodes and checks in C. They only
ever *accept*: a line they take becomes a :class:`CaseEventRecord` at once; anything else (an
unknown field, a type it does not know, a bad value, odd JSON) is handed to pydantic, which accepts
it or names the problem exactly as before. A field whose type or validator is not understood here
makes its event type go to pydantic every time. ``tests/deadlines/unit/test_compute_cli_equivalence.py``
checks, on valid and broken events, that whatever the fast path accepts pydantic accepts with the
same record.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import fields, make_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from annotated_types import MaxLen, MinLen
from pydantic import BaseModel

from services.deadlines.adapters.records import record_from_event
from services.deadlines.domain.events import CaseEventRecord
from shared.contracts import EVENT_MODELS, parse_case_event
from shared.contracts.envelope import _aware


class _Unknown(Exception):
    """A type or constraint the fast path does not know: that event type always goes to pydantic."""


_STRING_CONSTRAINTS = ("StringConstraints", "_PydanticGeneralMetadata")  # pydantic's, from Field(pattern=...)


def _settings(constraint: Any) -> list[str]:
    """The names of the settings a constraint object sets (not None)."""
    names = getattr(constraint, "__dataclass_fields__", None) or getattr(constraint, "__dict__", {})
    return [name for name in names if getattr(constraint, name, None) is not None]


_SEEN_MAX = 100_000


def _pattern_check(pattern: str) -> tuple[set[str], Callable[[str], Any], Callable[[str], bool]]:
    """(the values seen to match, the pattern's match, whether a value matches through that bounded cache):
    a case id comes on each of its events, team ids, advice ids, ... (an event id once: match alone)."""
    # pydantic matches patterns with Rust's regex, where `$` is the end of the text: \Z in Python.
    # ASCII classes are never wider than Rust's Unicode ones, so the fast path only ever accepts less.
    match = re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", pattern), re.ASCII).match
    seen: set[str] = set()

    def check(value: str) -> bool:
        if value in seen:
            return True
        if match(value) is None:
            return False
        if len(seen) >= _SEEN_MAX:
            seen.clear()
        seen.add(value)
        return True
    return seen, match, check


_PATTERN_CHECKS: dict[str, tuple[set[str], Callable[[str], Any], Callable[[str], bool]]] = {}
_AWARE_DATETIME = object()  # the envelope's time: read by _timestamp (msgspec would round 7 fraction digits)
# RFC 3339 as producers write it; other spellings pydantic may still accept go to pydantic.
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})",
                       re.ASCII)


def _timestamp(value: str) -> datetime | None:
    if not _DATETIME.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class _Patterned:
    """A string type whose pattern is checked after msgspec has decoded it."""

    def __init__(self, spec: Any, pattern: str) -> None:
        self.spec = spec
        self.check = _PATTERN_CHECKS.get(pattern) or _PATTERN_CHECKS.setdefault(pattern, _pattern_check(pattern))


def _spec_for(annotation: Any, metadata: list[Any]) -> Any:
    """The msgspec type that accepts no more than pydantic does for a field, or _Unknown."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        if metadata:
            raise _Unknown(annotation)
        inner = next(a for a in args if a is not type(None))
        spec = _spec_for(inner.__origin__, list(inner.__metadata__)) if hasattr(inner, "__metadata__") else \
            _spec_for(inner, [])  # Optional[Annotated[str, constraints]] or Optional[X]
        if isinstance(spec, _Patterned):
            spec.spec = spec.spec | None
            return spec
        return spec | None
    if annotation is date and not metadata:
        return date
    if annotation is datetime and [getattr(m, "func", None) for m in metadata] == [_aware]:
        return _AWARE_DATETIME
    if annotation is bool and not metadata:
        return bool
    if origin is Literal and not metadata and all(type(a) is str for a in args):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum) and not metadata:
        if not all(type(m.value) is str for m in annotation):
            raise _Unknown(annotation)
        return annotation
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
        pattern = limits.pop("pattern", None)
        spec = Annotated[str, msgspec.Meta(**limits)] if limits else str
        # msgspec checks a pattern through a Python call per value, dearer than a cache of the values
        # seen before: the pattern is checked after decoding (see fast_record), marked by _Patterned.
        return spec if pattern is None else _Patterned(spec, pattern)
    if origin is list and args == (str,) and not metadata:
        return list[str]
    raise _Unknown(annotation)


def _struct_fields(model: type[BaseModel], skip: tuple[str, ...] = ()
                   ) -> tuple[list[tuple[Any, ...]], list[tuple[str, Callable[[str], bool]]]]:
    """msgspec (name, type[, default]) of every field of a model without validators of its own, and
    the (name, check) of its fields with a pattern."""
    decorators = model.__pydantic_decorators__
    if any(getattr(decorators, kind) for kind in ("validators", "field_validators", "root_validators",
                                                   "model_validators")):
        raise _Unknown(model)
    if model.model_config.get("extra") != "forbid" or model.model_config.get("strict"):
        raise _Unknown(model)
    out: list[tuple[Any, ...]] = []
    patterned = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        if field.alias not in (None, name) or field.validation_alias is not None:
            raise _Unknown(name)
        spec = _spec_for(field.annotation, list(field.metadata))
        if isinstance(spec, _Patterned):
            patterned.append((name, spec.check))  # (seen, match, check)
            spec = spec.spec
        elif spec is _AWARE_DATETIME:
            if name != "time" or "data" not in skip:
                raise _Unknown(name)  # the envelope's time only
            spec = str
        if field.is_required():
            out.append((name, spec))
        elif field.default_factory is not None or isinstance(field.default, list | dict | set):
            out.append((name, spec, msgspec.field(default_factory=lambda f=field: f.get_default(
                call_default_factory=True))))
        else:
            out.append((name, spec, field.default))
    return out, patterned


def _struct(type_: str, model: type[BaseModel]
            ) -> tuple[type[msgspec.Struct], tuple[Callable[[str], bool], ...], tuple[tuple[str, Any], ...]] | None:
    """The tagged msgspec Struct of one event type, or None when some part of it is only pydantic's to judge."""
    try:
        envelope, envelope_patterns = _struct_fields(model, skip=("type", "data"))
        data, data_patterns = _struct_fields(model.model_fields["data"].annotation)
    except _Unknown:
        return None
    if [name for name, _ in envelope_patterns] != ["id", "subject", "supersedes"]:
        return None  # fast_record checks exactly these three envelope patterns
    required = {f[0] for f in envelope if len(f) == 2}
    if not {"id", "subject", "time"} <= required or "supersedes" not in {f[0] for f in envelope} \
            or "supersedes" in required or ("occurred_on", date) not in data:
        return None
    data_struct = msgspec.defstruct(f"Data_{type_}", data, kw_only=True, forbid_unknown_fields=True)
    struct = msgspec.defstruct(f"Event_{type_}", [*envelope, ("data", data_struct)], kw_only=True,
                               forbid_unknown_fields=True, tag_field="type", tag=type_)
    (_, match_id, _), (seen_subject, _, check_subject), (_, _, check_supersedes) = (
        check for _, check in envelope_patterns)
    return struct, (match_id, seen_subject, check_subject, check_supersedes), \
        tuple((name, check) for name, (_, _, check) in data_patterns)


_COMPILED = {type_: compiled for type_, model in EVENT_MODELS.items() if (compiled := _struct(type_, model))}
STRUCTS = {type_: struct for type_, (struct, _, _) in _COMPILED.items()}
_decode = msgspec.json.Decoder(Union[tuple(STRUCTS.values())]).decode  # noqa: UP007 (a runtime tuple of types)
# struct -> (event type, (id's match, subjects seen, subject's and supersedes' checks), (data field, check), ...)
_AFTER = {struct: (type_, *checks) for type_, (struct, *checks) in _COMPILED.items()}
_asdict = msgspec.structs.asdict
_DecodeError = msgspec.DecodeError  # ValidationError is a DecodeError


# Building a frozen dataclass costs one object.__setattr__ a field; as model.make_deadline does for
# Deadline, records are built as a twin with the same slots and relabelled (a test compares them).
_MutableRecord = make_dataclass("_MutableRecord", [(f.name, f.type) for f in fields(CaseEventRecord)], slots=True,
                                eq=False, repr=False)


def _record(*values: Any) -> CaseEventRecord:
    record = _MutableRecord(*values)
    record.__class__ = CaseEventRecord
    return record  # type: ignore[no-any-return]


def fast_record(line: bytes | str) -> CaseEventRecord | None:
    """The record of a line the fast path is sure of; None: ask :func:`contract_record`."""
    try:
        event = _decode(line)
    except _DecodeError:
        return None
    type_, (match_id, seen_subject, check_subject, check_supersedes), data_checks = _AFTER[type(event)]
    id_, subject, supersedes = event.id, event.subject, event.supersedes
    if match_id(id_) is None or (subject not in seen_subject and not check_subject(subject)) or (
            supersedes is not None and not check_supersedes(supersedes)):
        return None
    data = _asdict(event.data)
    for name, check in data_checks:
        value = data[name]
        if value is not None and not check(value):
            return None
    recorded_at = _timestamp(event.time)
    if recorded_at is None:
        return None
    record = _MutableRecord(id_, subject, type_, data.pop("occurred_on"), recorded_at, data, supersedes)
    record.__class__ = CaseEventRecord
    return record  # type: ignore[return-value]


def contract_record(line: bytes | str) -> CaseEventRecord:
    """Through the shared pydantic contracts (the reference route): raises pydantic's ValidationError."""
    return record_from_event(parse_case_event(line))
