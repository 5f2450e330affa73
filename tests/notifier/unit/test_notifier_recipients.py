"""Who is told what about a deadline event (pure), the subscriptions' rules, the keyed fingerprints
that stand for people, and the morning trigger."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.notifier.adapters.crypto import Crypto
from services.notifier.domain.recipients import Recipient, plan_for_deadline_event
from services.notifier.domain.subscriptions import SubscriptionSpec, mask_address
from services.notifier.entrypoints.scheduler import build_scheduler, morning_trigger
from services.notifier.service_layer.notifications import family_recipients, safe_reason
from services.notifier.service_layer.subscriptions import describe
from tests.notifier.helpers import LONDON, deadline_event

CASEWORKER = Recipient("caseworker", "cw-1", "email", "sam@council.example")
FAMILY = [Recipient("family", "f-1", "sms", "07700900111"), Recipient("family", "f-2", "email", "a@example.org")]
MANAGERS = [Recipient("manager", "m-1", "email", "m@council.example", scope_name="team team-n")]
DUE = date(2026, 4, 21)


def plan(type_: str, rule_id: str = "assessment.decision", mode: str = "digest", **data: object) -> list[tuple]:
    event = deadline_event(type_, "case-1", rule_id, due_on=DUE, **data)
    planned = plan_for_deadline_event(event, CASEWORKER, FAMILY, MANAGERS, {"x": 1}, mode)  # type: ignore[arg-type]
    return [(p.kind, p.recipient.ref, p.template) for p in planned]


def test_in_digest_mode_new_deadlines_and_reminders_wait_for_the_digest() -> None:
    assert plan("deadline.opened", "assessment.plan_decision") == []
    assert plan("deadline.due_soon", reminder_offset_days=3) == []
    assert plan("deadline.exception", exception="E3") == []


def test_a_breach_alerts_the_caseworker_the_managers_and_the_family_at_once() -> None:
    assert plan("deadline.breached", "plan.final") == [
        ("breach_alert", "cw-1", "caseworker_breach"),
        ("breach_alert", "m-1", "manager_breach"),
        ("family_missed", "f-1", "family_deadline_missed"),
        ("family_missed", "f-2", "family_deadline_missed"),
    ]


def test_the_family_is_only_told_of_missed_duties_that_can_be_worded_for_them() -> None:
    kinds = [k for k, _, _ in plan("deadline.breached", "review.meeting_notice", responsible="school_head_or_la")]
    assert kinds == ["breach_alert", "breach_alert"]


def test_nobody_is_alerted_about_guidance_or_a_duty_that_is_not_the_councils() -> None:
    assert plan("deadline.breached", "review.under5", flags=["guidance"]) == []
    assert plan("deadline.breached", "assessment.advice", responsible="body_asked") == []


@pytest.mark.parametrize(("type_", "rule_id", "template"), [
    ("deadline.opened", "assessment.decision", "family_request_received"),
    ("deadline.met", "assessment.decision", "family_decision_made"),
    ("deadline.opened", "draft.representations", "family_draft_plan_issued"),
    ("deadline.met", "plan.final", "family_plan_issued"),
    ("deadline.due_soon", "review.annual", "family_review_due"),
])
def test_families_hear_at_each_milestone(type_: str, rule_id: str, template: str) -> None:
    planned = plan(type_, rule_id, responsible="family" if rule_id == "draft.representations" else "la")
    assert [(k, ref) for k, ref, t in planned if t == template] == [(f"family_{template}", "f-1"),
                                                                     (f"family_{template}", "f-2")]


def test_the_annual_review_milestone_has_one_key_whatever_the_reminder() -> None:
    keys = set()
    for offset in (10, 3, 0):
        event = deadline_event("deadline.due_soon", "case-1", "review.annual", due_on=DUE, reminder_offset_days=offset)
        keys |= {p.idempotency_key(event.data.deadline_id) for p in
                 plan_for_deadline_event(event, None, FAMILY[:1], [], {})}
    assert keys == {"case-1:review.annual:1|family_family_review_due|f-1"}


def test_immediate_mode_emails_every_event() -> None:
    assert plan("deadline.opened", mode="immediate")[0] == ("caseworker_new_deadline", "cw-1",
                                                            "caseworker_new_deadline")
    assert plan("deadline.due_soon", mode="immediate", reminder_offset_days=3) == [
        ("caseworker_reminder_3", "cw-1", "caseworker_reminder")]
    assert plan("deadline.exception", mode="immediate", exception="E4")[0][2] == "caseworker_exception_nudge"


def test_a_manager_alert_names_the_scope() -> None:
    event = deadline_event("deadline.breached", "case-1", due_on=DUE)
    [alert] = plan_for_deadline_event(event, None, [], MANAGERS, {"due_on": "x"})
    assert alert.context == {"due_on": "x", "scope_name": "team team-n"}


def test_addresses_never_show_in_a_recipients_repr() -> None:
    assert "07700900111" not in repr(FAMILY[0]) and "sam@" not in repr(CASEWORKER)


def test_family_recipients_need_consent_and_are_one_per_address() -> None:
    crypto = Crypto(Fernet.generate_key())
    contacts = {"contacts": [
        {"name": "A", "phone": "07700 900111", "channel": "sms", "consent": True, "language": "cy"},
        {"name": "A again", "phone": "+447700900111", "channel": "sms", "consent": True},
        {"name": "B", "phone": "07700 900222", "channel": "sms", "consent": False},
        {"name": "C", "email": "c@example.org", "channel": "none", "consent": True},
        {"name": "D", "email": "D@Example.org", "channel": "email", "consent": True},
        {"name": "E", "channel": "email", "consent": True},  # no address
    ]}
    found = family_recipients(crypto, "case-1", contacts)
    assert [(r.channel, r.address, r.language) for r in found] == [("sms", "07700 900111", "cy"),
                                                                   ("email", "D@Example.org", "en")]
    assert found[0].ref == crypto.fingerprint("family", "case-1", "sms", "+447700900111")
    assert all("7700" not in r.ref for r in found)


def test_fingerprints_are_keyed() -> None:
    one, other = Crypto(Fernet.generate_key()), Crypto(Fernet.generate_key())
    assert one.fingerprint("family", "+447700900111") == one.fingerprint("family", "+447700900111")
    assert one.fingerprint("family", "+447700900111") != other.fingerprint("family", "+447700900111")


def test_a_failure_reason_never_carries_the_address() -> None:
    reason = "GOV.UK Notify answered 400 (phone_number +447700900111 is not allowed; also 07700 900111)"
    safe = safe_reason(reason, "+447700900111")
    assert "7700" not in safe and "[address]" in safe and "400" in safe


def test_subscription_rules() -> None:
    spec = SubscriptionSpec(manager_ref="mgr-1", scope="team", scope_id="team-n", kind="breach", channel="sms",
                            address="07700 900444")
    assert spec.address == "+447700900444" and "900444" not in repr(spec)
    same = SubscriptionSpec(manager_ref="mgr-1", scope="team", scope_id="team-n", kind="breach", channel="sms",
                            address="+44 7700 900555")
    assert same.subscription_id == spec.subscription_id  # what it is, not where it goes
    assert mask_address(spec.address, "sms") == "+44*******444"
    assert mask_address("jo.bloggs@council.example", "email") == "j***@council.example"
    for bad, message in [
        ({"scope": "all", "scope_id": "x"}, "no scope_id"),
        ({"scope": "area", "scope_id": None}, "needs scope_id"),
        ({"kind": "daily_digest"}, "only breach alerts go by text"),
        ({"address": "020 7946 0000"}, "landline"),
        ({"channel": "email", "address": "not-an-address"}, "not a valid email address"),
        ({"scope": "region"}, "scope"),
    ]:
        fields = {"manager_ref": "mgr-1", "scope": "team", "scope_id": "team-n", "kind": "breach", "channel": "sms",
                  "address": "07700 900444", **bad}
        with pytest.raises(ValidationError) as info:
            SubscriptionSpec.model_validate(fields)
        text = describe(info.value)
        assert message in text and "900444" not in text and "7946" not in text


def test_the_morning_trigger_is_0800_london_monday_to_friday() -> None:
    trigger = morning_trigger("08:00")
    friday_evening = datetime(2026, 3, 27, 18, 0, tzinfo=LONDON)
    monday = trigger.get_next_fire_time(None, friday_evening)
    assert monday == datetime(2026, 3, 30, 8, 0, tzinfo=LONDON)
    assert monday.astimezone(UTC).hour == 7  # British Summer Time began on 29 March
    assert trigger.get_next_fire_time(None, monday) == monday


async def test_the_scheduler_only_triggers_and_a_failing_morning_never_stops_it() -> None:
    calls: list[str] = []

    async def morning() -> int:
        calls.append("run")
        raise RuntimeError("database unavailable")

    scheduler = build_scheduler(morning, "08:00")
    job = scheduler.get_job("morning-digests")
    assert str(job.trigger) == str(morning_trigger("08:00"))
    await job.func()  # logged, not raised: the next trigger (or the start-up catch-up) tries again
    assert calls == ["run"]
