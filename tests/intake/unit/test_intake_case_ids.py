"""Opaque case ids and deterministic event ids (issue 4)."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.domain.case_ids import (
    EVENT_ID_NAMESPACE,
    deterministic_event_id,
    looks_personal,
    opaque_case_id,
)

KEY = b"k" * 32


def test_case_id_shape_is_c_dash_24_hex():
    assert re.fullmatch(r"c-[0-9a-f]{24}", opaque_case_id(KEY, "sen2/919", "upn:A919000000001"))


def test_same_reference_gives_same_case_id():
    assert opaque_case_id(KEY, "cms/a", "CF/1") == opaque_case_id(KEY, "cms/a", "CF/1")


def test_case_id_depends_on_key_source_and_reference():
    base = opaque_case_id(KEY, "cms/a", "CF/1")
    assert opaque_case_id(b"other-key" * 4, "cms/a", "CF/1") != base
    assert opaque_case_id(KEY, "cms/b", "CF/1") != base
    assert opaque_case_id(KEY, "cms/a", "CF/2") != base
    # the separator keeps (source, reference) pairs apart
    assert opaque_case_id(KEY, "cms/a", "bc") != opaque_case_id(KEY, "cms/ab", "c")


def test_case_id_reveals_nothing_of_the_upn():
    upn = "A919000000001"
    case_id = opaque_case_id(KEY, "sen2/919", f"upn:{upn}")
    assert upn not in case_id and upn.lower() not in case_id and "919" not in case_id[2:5]


def test_empty_key_is_refused():
    with pytest.raises(ValueError, match="key"):
        opaque_case_id(b"", "cms/a", "CF/1")


def test_event_id_is_a_stable_uuid5():
    first = deterministic_event_id("sen2/919", "c-1", "request:2025-01-02", "ehc.request.received")
    again = deterministic_event_id("sen2/919", "c-1", "request:2025-01-02", "ehc.request.received")
    assert first == again
    assert uuid.UUID(first).version == 5
    # the same as the standard library's uuid5 over the unit-separated name
    assert first == str(uuid.uuid5(EVENT_ID_NAMESPACE, "sen2/919\x1fc-1\x1frequest:2025-01-02\x1fehc.request.received"))


def test_event_id_changes_with_any_part():
    base = deterministic_event_id("s", "a", "b")
    assert deterministic_event_id("s", "a", "c") != base
    assert deterministic_event_id("t", "a", "b") != base
    assert deterministic_event_id("s", "ab") != deterministic_event_id("s", "a", "b")


@given(st.text(), st.text())
def test_any_text_gives_ids(source, reference):
    assert opaque_case_id(KEY, source, reference).startswith("c-")
    assert uuid.UUID(deterministic_event_id(source, reference)).version == 5


@pytest.mark.parametrize("value,personal", [
    ("A919000000001", True), ("a91900000000B", True), ("1234567890", True),
    ("c-0123456789abcdef01234567", False), ("CF/2026/0042", False), ("A91900000001", False),
])
def test_looks_personal(value, personal):
    assert looks_personal(value) is personal
