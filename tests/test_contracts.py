"""The shared event contracts: immutable, versioned, documented, and the one list of event types."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.deadlines.domain.events import CASE_EVENT_TYPES as ENGINE_TYPES
from shared.contracts import CASE_EVENT_TYPES, EVENT_MODELS, build_case_event, describe_validation_error


def test_the_engine_knows_exactly_the_canonical_event_types() -> None:
    assert ENGINE_TYPES == CASE_EVENT_TYPES


def test_every_field_of_every_contract_is_described() -> None:
    for type_, model in EVENT_MODELS.items():
        data_model = model.model_fields["data"].annotation
        for name, field in data_model.model_fields.items():  # type: ignore[union-attr]
            assert field.description, f"{type_}.data.{name} has no description"


def test_events_are_immutable_and_versioned() -> None:
    event = build_case_event("ehc.request.received", id="e1", source="cms/x", case_id="case-1",
                             time="2026-01-05T10:00:00Z", occurred_on="2026-01-05")
    assert event.dataversion == "1" and event.specversion == "1.0"
    with pytest.raises(ValidationError):
        event.id = "other"  # type: ignore[misc]


def test_errors_name_the_field_never_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        build_case_event("ehc.case.assigned", id="e1", source="cms/x", case_id="case-1",
                         time="2026-01-05T10:00:00Z", occurred_on="2026-01-05", caseworker_id="jane smith",
                         team_id="t1")
    message = describe_validation_error(caught.value)
    assert "data.caseworker_id" in message and "jane" not in message


def test_a_case_id_cannot_hold_whitespace_or_a_name() -> None:
    with pytest.raises(ValidationError):
        build_case_event("ehc.request.received", id="e1", source="cms/x", case_id="Jane Smith",
                         time="2026-01-05T10:00:00Z", occurred_on="2026-01-05")
