"""Issue 9: nothing stale. A milestone first seen well after it happened is historical (recorded,
never sent): one function decides it for every path (deadline events, contacts arriving later)."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifier.domain.policy import NotificationStatus, can_transition, is_final, is_historical
from tests.notifier.helpers import deadline_event, london

NOW = london(2026, 11, 18, 10, 0)  # a Wednesday in November 2026


@pytest.mark.parametrize(("type_", "rule_id", "data", "historical"), [
    # a request received in 2025, loaded in November 2026
    ("deadline.opened", "assessment.decision", {"due_on": date(2025, 8, 12), "trigger_date": date(2025, 7, 1)}, True),
    # received yesterday: news
    ("deadline.opened", "assessment.decision", {"due_on": date(2026, 12, 30), "trigger_date": date(2026, 11, 17)},
     False),
    # a decision two days ago is still news (the default grace); three days ago is history
    ("deadline.met", "assessment.decision", {"due_on": date(2026, 12, 1), "completed_on": date(2026, 11, 16)}, False),
    ("deadline.met", "assessment.decision", {"due_on": date(2026, 12, 1), "completed_on": date(2026, 11, 15)}, True),
    # a breach months old; a breach of last night
    ("deadline.breached", "plan.final", {"due_on": date(2026, 6, 1)}, True),
    ("deadline.breached", "plan.final", {"due_on": date(2026, 11, 17)}, False),
    # a draft plan served recently but whose comments deadline has passed: the text would be wrong
    ("deadline.opened", "draft.representations", {"due_on": date(2026, 11, 10), "trigger_date": date(2026, 11, 17)},
     True),
    # a reminder about a day that has gone
    ("deadline.due_soon", "appeal.deadline", {"due_on": date(2026, 11, 17), "reminder_offset_days": 1}, True),
    ("deadline.due_soon", "appeal.deadline", {"due_on": date(2026, 11, 19), "reminder_offset_days": 1}, False),
])
def test_a_milestone_seen_well_after_it_happened_is_historical(type_: str, rule_id: str, data: dict,
                                                               historical: bool) -> None:
    event = deadline_event(type_, "case-1", rule_id, **data)
    assert is_historical(event.type, event.data, NOW, grace_days=2) is historical


def test_the_grace_is_a_setting() -> None:
    event = deadline_event("deadline.met", "case-1", due_on=date(2026, 12, 1), completed_on=date(2026, 11, 8))
    assert is_historical(event.type, event.data, NOW, grace_days=2)
    assert not is_historical(event.type, event.data, NOW, grace_days=14)


def test_historical_is_a_final_status_entered_only_when_planned() -> None:
    assert can_transition(NotificationStatus.PENDING, "historical")
    assert not can_transition("deferred", "historical")
    assert is_final("historical")
