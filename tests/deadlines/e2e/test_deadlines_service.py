"""The deadlines service against real Kafka and PostgreSQL (issue 5 acceptance): a full case
journey in and the right deadline events out; corrections and retractions change what is
published; two replicas fire every timer exactly once; with the clock moved forward, reminders
and breaches fire on the right day (Europe/London)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from services.deadlines.entrypoints.scheduler import fire_all_due
from shared import topics
from shared.settings import Settings
from tests.conftest import eventually, read_topic
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
LONDON = ZoneInfo("Europe/London")


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def set_london(self, day: date, at: time) -> None:
        self.at = datetime.combine(day, at, tzinfo=LONDON).astimezone(UTC)


def events_of(records: list) -> list[dict]:
    return [json.loads(r.value) for r in records]


def by_rule(events: list[dict]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for e in events:
        out.setdefault((e["data"]["rule_id"], e["data"]["deadline_id"]), []).append(e["type"])
    return out


async def _drained(service) -> bool:  # type: ignore[no-untyped-def]
    return await service.relay.pending() == 0


async def publish(producer, settings: Settings, *raw: bytes, key: bytes) -> None:
    for value in raw:
        await producer.send_and_wait(settings.kafka.topic(topics.CASE_EVENTS), value, key=key)


async def deadline_events(settings: Settings, enough) -> list[dict]:  # type: ignore[no-untyped-def]
    records = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.DEADLINE_EVENTS),
                               lambda rs: enough(events_of(rs)), 60)
    return events_of(records)


async def test_full_case_journey_publishes_the_right_deadline_events(isolated: Settings, producer) -> None:
    """Regs 5(1), 8(1), 10(1), 13(1)-(2); CFA s.44(1); Regs 20, 22(2)-(3)."""
    clock = MovableClock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    c = "case-journey"
    d0 = date(2025, 9, 1)
    journey = [
        case_event("j1", c, "ehc.case.assigned", d0, caseworker_id="cw-1", team_id="team-a"),
        case_event("j2", c, "ehc.request.received", d0, route="request", requested_by="parent"),
        case_event("j3", c, "ehc.assessment.decided", d0 + timedelta(days=35), decision="assess",
                   notice_sent_on=str(d0 + timedelta(days=36))),
        case_event("j4", c, "ehc.advice.requested", d0 + timedelta(days=37), advice_id="ep-1",
                   provider_kind="educational_psychology", provider_id="ep-service"),
        case_event("j5", c, "ehc.advice.received", d0 + timedelta(days=70), advice_id="ep-1",
                   provider_kind="educational_psychology", provider_id="ep-service"),
        case_event("j6", c, "ehc.draft_plan.issued", d0 + timedelta(days=100), served_on=str(d0 + timedelta(days=100))),
        case_event("j7", c, "ehc.plan.issued", d0 + timedelta(days=130), plan_id="plan-1"),
        case_event("j8", c, "ehc.review.meeting_held", date(2026, 9, 1)),
        case_event("j9", c, "ehc.review.decision_issued", date(2026, 9, 20), outcome="amend"),
        case_event("j10", c, "ehc.amendment.proposed", date(2026, 9, 20)),
        case_event("j11", c, "ehc.plan.amended", date(2026, 10, 30)),
    ]
    async with running(bootstrap(isolated, clock=clock)):
        await publish(producer, isolated, *journey, key=c.encode())
        events = await deadline_events(isolated, lambda es: any(e["data"]["rule_id"] == "amendment.final"
                                                                   and e["type"] == "deadline.met" for e in es))
    rules = by_rule(events)
    kinds = {rule: types for (rule, _), types in rules.items()}
    for rule in ("assessment.decision", "assessment.advice", "plan.final", "review.decision", "amendment.final"):
        assert "deadline.met" in kinds[rule], rule
    assert "deadline.opened" in kinds["review.annual"]
    decision = next(e for e in events if e["data"]["rule_id"] == "assessment.decision")
    assert decision["data"]["due_on"] == str(d0 + timedelta(weeks=6))
    assert decision["data"]["legal_source"].startswith("Regs 5(1)")
    assert decision["data"]["team_id"] == "team-a" and decision["data"]["caseworker_id"] == "cw-1"
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))


async def test_correction_and_retraction_change_the_published_deadlines(isolated: Settings, producer) -> None:
    """supersedes moves assessment.decision (Regs 5(1)); ehc.event.retracted cancels it."""
    clock = MovableClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    c = "case-correct"
    async with running(bootstrap(isolated, clock=clock)):
        await publish(producer, isolated, case_event("c1", c, "ehc.request.received", date(2026, 2, 2),
                                                     route="request", requested_by="parent"), key=c.encode())
        await deadline_events(isolated, lambda es: len(es) >= 3)
        corrected = json.loads(case_event("c2", c, "ehc.request.received", date(2026, 2, 9), route="request",
                                          requested_by="parent"))
        corrected["supersedes"] = "c1"
        await publish(producer, isolated, json.dumps(corrected).encode(), key=c.encode())
        events = await deadline_events(isolated, lambda es: sum(e["type"] == "deadline.changed" for e in es) >= 3)
        changed = next(e for e in events if e["type"] == "deadline.changed"
                       and e["data"]["rule_id"] == "assessment.decision")
        assert changed["data"]["due_on"] == "2026-03-23" and changed["data"]["previous_due_on"] == "2026-03-16"
        # Retracting the correction undoes it: the original request counts again.
        await publish(producer, isolated, case_event("c3", c, "ehc.event.retracted", date(2026, 2, 20), retracts="c2"),
                      key=c.encode())
        events = await deadline_events(isolated, lambda es: sum(e["type"] == "deadline.changed" for e in es) >= 6)
        back = [e for e in events if e["type"] == "deadline.changed" and e["data"]["rule_id"] == "assessment.decision"]
        assert back[-1]["data"]["due_on"] == "2026-03-16"
        # Retracting the request itself: no request, no clocks.
        await publish(producer, isolated, case_event("c4", c, "ehc.event.retracted", date(2026, 2, 20), retracts="c1"),
                      key=c.encode())
        events = await deadline_events(isolated, lambda es: sum(e["type"] == "deadline.cancelled" for e in es) >= 3)
    cancelled = {e["data"]["rule_id"] for e in events if e["type"] == "deadline.cancelled"}
    assert {"assessment.decision", "assessment.plan_decision", "plan.final"} <= cancelled


def caseworker_offsets(settings: Settings) -> Settings:
    """The reminder offsets these tests count (the default also has 5 and 1, for families' own deadlines)."""
    return settings.model_copy(update={"deadlines": settings.deadlines.model_copy(
        update={"reminder_working_days": [10, 3, 0]})})


async def test_reminders_and_breach_fire_on_the_right_day(isolated: Settings, producer) -> None:
    """Reminders 10 and 3 working days before and on the due day at 08:00; the breach at 00:00
    Europe/London the day after (law file C). assessment.decision: 2026-03-02 + 6 weeks = 2026-04-13;
    Good Friday 3 April and Easter Monday 6 April 2026 are not working days."""
    clock = MovableClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    c = "case-clock"
    service = bootstrap(caseworker_offsets(isolated), clock=clock)
    fired: dict[date, list[tuple[str, int | None]]] = {}
    async with running(service):
        await publish(producer, isolated, case_event("k1", c, "ehc.request.received", date(2026, 3, 2),
                                                     route="request", requested_by="parent"), key=c.encode())
        await deadline_events(isolated, lambda es: len(es) >= 3)
        seen = 3
        day = date(2026, 3, 3)
        while day <= date(2026, 4, 15):
            for at in (time(0, 5), time(8, 5)):
                clock.set_london(day, at)
                await fire_all_due(service.service, service.after_batch)
            await eventually(lambda: _drained(service), 10, "the outbox drained")
            events = await deadline_events(isolated, lambda es, n=seen: len(es) >= n)
            for e in events[seen:]:
                if e["data"]["rule_id"] == "assessment.decision":
                    fired.setdefault(day, []).append((e["type"], e["data"].get("reminder_offset_days")))
            seen = len(events)
            day += timedelta(days=1)
    assert fired == {
        date(2026, 3, 26): [("deadline.due_soon", 10)],  # 10 working days before 13 April, skipping 3 and 6 April
        date(2026, 4, 8): [("deadline.due_soon", 3)],
        date(2026, 4, 13): [("deadline.due_soon", 0)],
        date(2026, 4, 14): [("deadline.breached", None)],
    }


async def test_two_replicas_fire_every_timer_exactly_once(isolated: Settings, producer) -> None:
    """Two replicas in one consumer group, timers claimed with FOR UPDATE SKIP LOCKED. The clock jumps
    past every due date (as after an outage): each deadline's four timers fire, once, and only the
    breach speaks (the reminders it supersedes are marked fired silently)."""
    clock = MovableClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
    # Only the four calls below fire (the replicas' own ticks would take a share of the timers uncounted);
    # each call keeps claiming while due timers remain, even those the other replica holds for a moment.
    settings = caseworker_offsets(isolated)
    quiet = settings.model_copy(update={"deadlines": settings.deadlines.model_copy(update={"tick_seconds": 3600})})
    a, b = bootstrap(quiet, clock=clock), bootstrap(quiet, clock=clock)
    cases = [f"case-rep-{i}" for i in range(40)]
    async with running(a, b):
        for c in cases:
            await publish(producer, isolated, case_event(f"{c}-r", c, "ehc.request.received", date(2026, 1, 5),
                                                         route="request", requested_by="parent"), key=c.encode())
        await deadline_events(isolated, lambda es: len(es) >= 3 * len(cases))
        clock.at = datetime(2026, 7, 1, 12, tzinfo=UTC)  # every reminder and breach is now due
        fired = await asyncio.gather(*(fire_all_due(s.service, s.after_batch, batch=25) for s in (a, b, a, b)))
        expected_timers = 3 * 4 * len(cases)  # 3 deadlines x (3 reminders + 1 breach) per case
        events = await deadline_events(isolated, lambda es: len(es) >= 3 * len(cases) + 3 * len(cases))
        async with a.sessions() as session:
            unfired = await session.scalar(select(func.count()).select_from(tables.timers)
                                           .where(tables.timers.c.fired_at.is_(None)))
    assert sum(fired) == expected_timers and unfired == 0
    timer_events = [e for e in events if e["type"] in ("deadline.due_soon", "deadline.breached")]
    assert Counter(e["type"] for e in timer_events) == {"deadline.breached": 3 * len(cases)}
    per_deadline = Counter(e["data"]["deadline_id"] for e in timer_events)
    assert len(per_deadline) == 3 * len(cases) and set(per_deadline.values()) == {1}


async def test_an_exception_on_a_met_deadline_reaches_its_stored_explanation(isolated: Settings, producer) -> None:
    """A plan.final met late, then (in a later batch) an E3 recorded against it: neither its date nor
    its status changes, yet its stored explanation must carry the exception, or the 20-week figures
    excluding exceptions (DfE) would count it."""
    clock = MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC))
    c = "case-late-exception"
    app = bootstrap(isolated, clock=clock)

    async def stored_plan_final() -> dict:
        async with app.sessions() as session:
            row = (await session.execute(select(tables.deadlines.c.status, tables.deadlines.c.explanation).where(
                tables.deadlines.c.deadline_id == f"{c}:plan.final:1"))).one_or_none()
        return {**row.explanation, "status": row.status} if row is not None else {}

    async with running(app):
        await publish(producer, isolated,
                      case_event("le-r", c, "ehc.request.received", date(2025, 2, 3), route="request",
                                 requested_by="parent"),
                      case_event("le-p", c, "ehc.plan.issued", date(2025, 9, 1), plan_id="p"), key=c.encode())

        async def met_late() -> bool:
            return (await stored_plan_final()).get("status") == "met_late"

        await eventually(met_late, 30, "the late plan stored")
        await publish(producer, isolated, case_event("le-x", c, "ehc.exception.recorded", date(2025, 2, 3),
                                                     exception="E3", rule_ids=["plan.final"], reason="test"),
                      key=c.encode())

        async def excepted() -> bool:
            return (await stored_plan_final()).get("exception") == "E3"

        await eventually(excepted, 30, "the exception in the stored explanation")
