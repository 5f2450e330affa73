"""shared.bulk.json_text: orjson where it can, the same values as json.dumps, and json.dumps's
failure where orjson would have written what json.dumps refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import pytest

from shared.bulk import json_text


class Status(StrEnum):
    OPEN = "open"


@dataclass
class Point:
    x: int


SAMPLES: list[Any] = [
    None, True, 0, -7, 2**63 - 1, 2**70, 1.5, 1e-7, "", "é \x1f\x1e \u2028 \"q\" \\", [], {},
    {"a": [1, None, {"b": "c"}], "flags": ["x", "y"], "status": Status.OPEN}, {1: "int key", "s": 2.25},
    [{"rule_id": "assessment.decision", "due_on": "2026-12-01", "period_text": "6 weeks"}],
]


@pytest.mark.parametrize("value", SAMPLES)
def test_the_same_values_as_json_dumps(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("value", [date(2026, 1, 1), {"on": date(2026, 1, 1)}, Point(1), {1, 2}])
def test_what_json_dumps_refuses_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        json_text(value)
