"""The Deadline output: frozen, JSON-ready, and built the fast way without changing its meaning."""

from __future__ import annotations

import dataclasses
import json

import pytest
from engine_testkit import request_case

from services.deadlines.domain import Deadline, DeadlineStatus
from services.deadlines.domain.model import make_deadline


def sample() -> Deadline:
    return request_case("2026-01-05").deadline("2026-01-06", "plan.final")


def test_deadline_is_frozen() -> None:
    d = sample()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.status = DeadlineStatus.MET  # type: ignore[misc]
    assert type(d) is Deadline and not hasattr(d, "__dict__")


def test_fast_construction_equals_the_dataclass_constructor() -> None:
    d = sample()
    values = [getattr(d, f.name) for f in dataclasses.fields(Deadline)]
    slow = Deadline(*values)
    fast = make_deadline(*values)
    assert slow == fast == d and hash(slow) == hash(fast) and repr(slow) == repr(fast)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)


def test_to_dict_is_json_ready() -> None:
    out = sample().to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["due_on"] == "2026-05-25" and out["status"] == "open" and out["completed_on"] is None
    assert out["deadline_id"] == "case-1:plan.final:1" and out["flags"] == []
    assert set(out) == {f.name for f in dataclasses.fields(Deadline)}


def test_status_is_a_closed_string_enum() -> None:
    assert [s.value for s in DeadlineStatus] == [
        "open", "due_soon", "met", "met_late", "breached", "exception", "cancelled",
    ]
    assert DeadlineStatus.MET == "met"
