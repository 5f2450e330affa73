"""Issue 11 item 2: families and caseworkers are told of a moved deadline once, in plain words.

A ``deadline.changed`` whose date moved (not merely because time passed) is one "date changed"
email to the caseworker (a council duty) and one plain-words text or email to each consenting
family member (a deadline families are told about), keyed by the new date; nothing about a date
that has gone or a change seen long after it happened."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.notifier.domain.policy import is_historical
from services.notifier.domain.recipients import Recipient, date_moved, may_tell_family, plan_for_deadline_event
from tests.notifier.helpers import deadline_event, london

CASEWORKER = Recipient("caseworker", "cw-1", "email", "sam@council.example")
FAMILY = [Recipient("family", "f-1", "sms", "07700900111"), Recipient("family", "f-2", "email", "a@example.org")]
NOW = london(2026, 11, 18, 10, 0)
NEW, OLD = date(2026, 12, 30), date(2026, 12, 29)


def changed(rule_id: str = "assessment.decision", *, due_on: date = NEW, previous_due_on: date | None = OLD,
            change_reason: str | None = "calendar", **data: object) -> object:
    return deadline_event("deadline.changed", "case-1", rule_id, due_on=due_on, previous_due_on=previous_due_on,
                          previous_status="open", change_reason=change_reason, trigger_date=date(2026, 11, 2),
                          change_detail="the working-day calendar changed", **data)


def plan(event: object, mode: str = "digest") -> list[tuple[str, str, str]]:
    planned = plan_for_deadline_event(event, CASEWORKER, FAMILY, [], {}, mode)  # type: ignore[arg-type]
    return [(p.idempotency_key("case-1:assessment.decision:1"), p.recipient.ref, p.template) for p in planned]


@pytest.mark.parametrize("mode", ["digest", "immediate"])
@pytest.mark.parametrize("reason", ["events", "ruleset", "calendar"])
def test_a_moved_date_tells_the_caseworker_and_the_family_once_each(mode: str, reason: str) -> None:
    event = changed(change_reason=reason)
    assert date_moved(event) and may_tell_family(event)
    key = "case-1:assessment.decision:1|date_changed:2026-12-30|"
    assert plan(event, mode) == [(key + "cw-1", "cw-1", "caseworker_date_changed"),
                                 (key + "f-1", "f-1", "family_date_changed"),
                                 (key + "f-2", "f-2", "family_date_changed")]


def test_each_move_has_its_own_key_and_the_same_move_the_same_key() -> None:
    first, again = plan(changed()), plan(changed())
    moved_again = plan(changed(due_on=NEW + timedelta(days=1), previous_due_on=NEW))
    assert first == again
    assert not {k for k, _, _ in first} & {k for k, _, _ in moved_again}


@pytest.mark.parametrize("event", [
    changed(previous_due_on=NEW),  # the status changed, not the date
    changed(previous_due_on=None),  # nothing to compare with
    changed(change_reason="time"),  # time passed: no news
    changed(status="met", previous_due_on=OLD),  # done already
    changed(status="cancelled"),
])
def test_no_message_when_the_date_did_not_move_or_time_merely_passed(event: object) -> None:
    assert not date_moved(event) and not may_tell_family(event)
    assert plan(event, "immediate") == []


def test_only_the_caseworker_of_a_council_duty_and_only_families_of_rules_they_are_told_about() -> None:
    # a duty of a body asked for advice: nobody is told by the notifier
    assert plan(changed("assessment.advice", responsible="body_asked")) == []
    # the family's own deadline (their appeal window): the family, not the caseworker
    assert [r for _, r, _ in plan(changed("appeal.deadline", responsible="family"))] == ["f-1", "f-2"]
    # a council duty no family text is worded for: the caseworker only
    assert [r for _, r, _ in plan(changed("review.meeting_notice", responsible="school_head_or_la"))] == ["cw-1"]


def test_a_date_already_gone_is_history() -> None:
    assert is_historical("deadline.changed", changed(due_on=date(2026, 11, 17)).data, NOW)  # type: ignore[attr-defined]
    assert not is_historical("deadline.changed", changed().data, NOW)  # type: ignore[attr-defined]


def test_a_change_seen_well_after_it_happened_is_history_whenever_the_deadline_started() -> None:
    event = changed()
    data = event.data  # type: ignore[attr-defined]
    # the deadline started weeks ago (trigger 2 November): the change itself is today's news
    assert not is_historical("deadline.changed", data, NOW, event_time=NOW - timedelta(hours=1))
    # a change published a month ago, replayed now
    assert is_historical("deadline.changed", data, NOW, event_time=datetime(2026, 10, 15, tzinfo=UTC))
