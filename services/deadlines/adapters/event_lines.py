"""Canonical case events as JSON lines into engine records, fast: the command line's reader.

The shared pydantic contracts stay the one validator. Reading an event through pydantic and then
``record_from_event`` costs about 25 µs a line, more than the engine spends on it, and importing
pydantic and the contracts a quarter of a second, so the same contracts (the models' own fields,
types, constraints and defaults) are compiled into msgspec Structs, one per event type, tagged by
``type``, that msgspec decodes and checks in C: services/deadlines/adapters/event_structs.py,
written by event_structs_build.py from the contracts (a test fails when it is not what the
contracts give today). They only ever *accept*: a line they take becomes a
:class:`CaseEventRecord` at once; anything else (an unknown field, a type it does not know, a bad
value, odd JSON) is handed to pydantic, imported then, which accepts it or names the problem
exactly as before. ``tests/deadlines/unit/test_compute_cli_equivalence.py`` checks, on valid and
broken events, that whatever the fast path accepts pydantic accepts with the same record.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import fields, make_dataclass
from datetime import datetime
from typing import Any, Union

import msgspec

from services.deadlines.adapters.event_structs import EVENTS
from services.deadlines.domain.events import CaseEventRecord

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


def _checks(pattern: str) -> tuple[set[str], Callable[[str], Any], Callable[[str], bool]]:
    return _PATTERN_CHECKS.get(pattern) or _PATTERN_CHECKS.setdefault(pattern, _pattern_check(pattern))


# RFC 3339 as producers write it; other spellings pydantic may still accept go to pydantic.
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})",
                       re.ASCII)
_TIMES: dict[str, datetime] = {}  # recording times seen before (events recorded in one batch share theirs)


def _timestamp(value: str) -> datetime | None:
    found = _TIMES.get(value)
    if found is not None:
        return found
    if not _DATETIME.fullmatch(value):
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(_TIMES) >= _SEEN_MAX:
        _TIMES.clear()
    _TIMES[value] = found
    return found


STRUCTS = {type_: struct for type_, (struct, _, _) in EVENTS.items()}
_decode = msgspec.json.Decoder(Union[tuple(STRUCTS.values())]).decode  # noqa: UP007 (a runtime tuple of types)
# A case's events share one case-id string (a set or dict of case ids compares by identity, and a case
# id is kept once): subject seen -> that string.
_SUBJECTS: dict[str, str] = {}
# struct -> (event type, (id's match, subjects seen, subject's and supersedes' checks),
#            ((data field, values seen, check), ...))
# Event types interned, as the rule set's are (rules._matches): dict lookups and comparisons by identity.
_AFTER = {
    struct: (sys.intern(type_), (_checks(id_)[1], _SUBJECTS, _checks(subject)[2], _checks(supersedes)[2]),
             tuple((name, _checks(pattern)[0], _checks(pattern)[2]) for name, pattern in data_patterns))
    for type_, (struct, (id_, subject, supersedes), data_patterns) in EVENTS.items()
}
_asdict = msgspec.structs.asdict
# ValidationError is a DecodeError; msgspec leaves a string's bytes to Python, which raises UnicodeDecodeError
# for bad UTF-8 inside one (the contracts' route then names the line as not valid UTF-8)
_DecodeError = (msgspec.DecodeError, UnicodeDecodeError)


# Building a frozen dataclass costs one object.__setattr__ a field; as model.make_deadline does for
# Deadline, records are built as a twin with the same slots and relabelled (the equivalence test
# compares them with the contracts' records).
_MutableRecord = make_dataclass("_MutableRecord", [(f.name, f.type) for f in fields(CaseEventRecord)], slots=True,
                                eq=False, repr=False)


def fast_record(line: bytes | str) -> CaseEventRecord | None:
    """The record of a line the fast path is sure of; None: ask :func:`contract_record`."""
    try:
        event = _decode(line)
    except _DecodeError:
        return None
    type_, (match_id, subjects, check_subject, check_supersedes), data_checks = _AFTER[type(event)]
    id_, supersedes = event.id, event.supersedes
    subject = subjects.get(event.subject)
    if subject is None:
        subject = event.subject
        if not check_subject(subject):
            return None
        if len(subjects) >= _SEEN_MAX:
            subjects.clear()
        subjects[subject] = subject
    if match_id(id_) is None or (supersedes is not None and not check_supersedes(supersedes)):
        return None
    data = _asdict(event.data)
    for name, seen, check in data_checks:
        value = data[name]
        if value is not None and value not in seen and not check(value):
            return None
    recorded_at = _timestamp(event.time)
    if recorded_at is None:
        return None
    record = _MutableRecord(id_, subject, type_, data.pop("occurred_on"), recorded_at, data, supersedes)
    record.__class__ = CaseEventRecord
    return record  # type: ignore[return-value]


def contract_record(line: bytes | str) -> CaseEventRecord:
    """Through the shared pydantic contracts (the reference route): raises pydantic's ValidationError."""
    from services.deadlines.adapters.records import record_from_event
    from shared.contracts import parse_case_event

    return record_from_event(parse_case_event(line))
