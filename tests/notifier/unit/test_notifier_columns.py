"""Every notification kind and idempotency key the notifier can make fits its column: a value too
long for PostgreSQL fails the whole batch on every retry (a nudge's kind holds the event id)."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifier.adapters import tables
from services.notifier.domain.recipients import FAMILY_MILESTONES, Recipient, plan_for_deadline_event
from shared.contracts.deadline_events import DEADLINE_EVENT_TYPES
from tests.notifier.helpers import deadline_event

LONGEST_ID = "e" * 200  # an event id (OpaqueId) may be 200 characters
LONGEST_CASE = "c" * 150
CASEWORKER = Recipient("caseworker", "w" * 200, "email", "sam@council.example")  # recipient_ref: 200
FAMILY = Recipient("family", "f" * 24, "sms", "07700900111")
MANAGER = Recipient("manager", "m" * 24, "email", "mgr@council.example", scope_name="team-n")
DIGEST_KINDS = ("caseworker_daily_digest", "manager_daily_at_risk", "manager_weekly_summary")
RULES = sorted({rule for _, rule in FAMILY_MILESTONES} | {"plan.final", "review.annual"})


def _every_planned() -> list[tuple[str, str]]:
    """(kind, idempotency key) of everything a deadline event can plan, at the contract's longest."""
    found = []
    for type_ in DEADLINE_EVENT_TYPES:
        for rule in RULES:
            event = deadline_event(type_, "c", rule, due_on=date(2026, 4, 21), event_id=LONGEST_ID,
                                   reminder_offset_days=10)
            data = event.data.model_copy(update={"deadline_id": "d" * 400, "case_id": LONGEST_CASE})
            event = event.model_copy(update={"data": data})
            for mode in ("digest", "immediate"):
                for item in plan_for_deadline_event(event, CASEWORKER, [FAMILY], [MANAGER], {}, mode):  # type: ignore[arg-type]
                    found.append((item.kind, item.idempotency_key(data.deadline_id)))
    return found


def test_the_checks_see_the_longest_kinds() -> None:
    kinds = {kind for kind, _ in _every_planned()}
    assert f"caseworker_exception_{LONGEST_ID}" in kinds
    assert {"breach_alert", "family_missed", "caseworker_new_deadline", "caseworker_reminder_10"} <= kinds


@pytest.mark.parametrize("kind", ["caseworker_delivery_failed", *DIGEST_KINDS])
def test_every_other_kind_fits(kind: str) -> None:
    assert len(kind) <= tables.notifications.c.kind.type.length


def test_every_kind_and_idempotency_key_of_a_deadline_event_fits_its_column() -> None:
    kind_length = tables.notifications.c.kind.type.length
    key_length = tables.notifications.c.idempotency_key.type.length
    too_long = sorted({kind for kind, _ in _every_planned() if len(kind) > kind_length})
    assert too_long == [], f"kinds longer than notifications.kind ({kind_length})"
    longest_key = max(len(key) for _, key in _every_planned())
    assert longest_key <= key_length
    # an alert about a failed message: its key names the failed row and the caseworker
    assert len(f"{'n' * 64}|caseworker_delivery_failed|{CASEWORKER.ref}") <= key_length
