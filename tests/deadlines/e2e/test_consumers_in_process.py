"""Several Kafka consumers in one deadlines process (issue 12, latency): they are members of the
service's one consumer group, so the partitions are shared between them as between replicas. While
one waits for PostgreSQL another works, and a record that arrives while a batch is handled does not
wait for it unless its partition is that consumer's. Per-case order and exactly-once stay those of
replicas: a case's events share a partition, so one consumer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from sqlalchemy import func, select

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from shared import topics
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_service import MovableClock, deadline_events, publish
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra


async def group_members(settings: Settings) -> dict[str, list[int]]:
    """Member id -> partitions of ehc.case-events held, as the group coordinator sees them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        group = settings.kafka.group("ehc-deadlines")
        description = (await admin.describe_consumer_groups([group]))[0]
        members: dict[str, list[int]] = {}
        for _err, _group, state, _proto_type, _proto, member_list in description.groups:
            if state != "Stable":
                return {}
            for member_id, _client, _host, _metadata, assignment in member_list:
                decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                members[member_id] = sorted(p for topic, parts in decoded.assignment if
                                            topic == settings.kafka.topic(topics.CASE_EVENTS) for p in parts)
        return members
    finally:
        await admin.close()


async def test_two_consumers_share_the_partitions_and_keep_each_case_in_order(isolated: Settings, producer) -> None:
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(update={"consumers": 2})})
    clock = MovableClock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    cases = [f"case-pair-{i}" for i in range(24)]
    request_on = date(2026, 11, 1)  # its decision is due on 13 December, after the clock
    app = bootstrap(settings, clock=clock)
    async with running(app):
        members: dict[str, list[int]] = {}

        async def both_members_hold_partitions() -> bool:
            members.update(await group_members(settings))
            return len(members) == 2 and all(members.values())

        await eventually(both_members_hold_partitions, 60, "two consumers in the group, each holding partitions")
        assert sorted(p for parts in members.values() for p in parts) == list(range(settings.kafka.partitions))
        for case in cases:  # a request, then the decision that meets its first deadline: order matters
            await publish(producer, settings,
                          case_event(f"{case}-r", case, "ehc.request.received", request_on, route="request",
                                     requested_by="parent"),
                          case_event(f"{case}-d", case, "ehc.assessment.decided", request_on + timedelta(days=19),
                                     decision="assess", notice_sent_on=str(request_on + timedelta(days=19))),
                          key=case.encode())

        def decision_met(e: dict) -> bool:
            return e["type"] == "deadline.met" and e["data"]["rule_id"] == "assessment.decision"

        events = await deadline_events(settings, lambda es: sum(decision_met(e) for e in es) >= len(cases))
        async with app.sessions() as session:
            processed = await session.scalar(select(func.count()).select_from(tables.processed_events))
    decisions = [e for e in events if e["data"].get("rule_id") == "assessment.decision"]
    for case in cases:  # opened by the request, then met by the decision: never the other way round
        assert [e["type"] for e in decisions if e["subject"] == case] == ["deadline.opened", "deadline.met"], case
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))  # nothing published twice
    assert processed == 2 * len(cases)
