"""Intake's and the notifier's /metrics show their consumers (issue 13): records consumed,
processed, duplicates, parked and held cases, so a stuck or poisoned consumer is visible."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from shared import topics
from shared.settings import Settings
from tests.conftest import eventually
from tests.e2e.harness import running
from tests.e2e.test_poison_records import NESTED, quick, request

pytestmark = pytest.mark.infra


async def metrics(app: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as client:
        text = (await client.get("/metrics")).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def increased(app: Any, before: dict, **labels: str) -> bool:
    """Whether the consumer's records with these labels counted up since ``before``."""
    now = await metrics(app)
    return value(now, "ehc_consumer_records_total", **labels) > value(before, "ehc_consumer_records_total", **labels)


async def test_intake_metrics_count_published_duplicates_parked_and_held(isolated: Settings, producer) -> None:
    settings = quick(isolated)
    app = intake_bootstrap(settings)
    topic = settings.kafka.topic(topics.INTAKE_CANONICAL)
    before = await metrics(app.webhook)
    good = request("m-1", "case-m-1")
    async with running(app):
        await producer.send_and_wait(topic, good, key=b"case-m-1")
        await producer.send_and_wait(topic, good, key=b"case-m-1")  # a duplicate
        await producer.send_and_wait(topic, NESTED, key=b"case-m-2")
        await producer.send_and_wait(topic, request("m-3", "case-m-2"), key=b"case-m-2")  # held behind it

        async def all_counted() -> bool:
            # the two cases sit on different partitions, handled in either order: wait for both
            now = await metrics(app.webhook)
            return (value(now, "ehc_intake_inputs_total", source="canonical", outcome="duplicate")
                    > value(before, "ehc_intake_inputs_total", source="canonical", outcome="duplicate")
                    and await increased(app.webhook, before, service="intake", consumer="intake-canonical",
                                        outcome="held"))

        await eventually(all_counted, 30, "the duplicate and the held record counted")
        after = await metrics(app.webhook)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    consumer = {"service": "intake", "consumer": "intake-canonical"}
    assert delta("ehc_consumer_records_total", **consumer, outcome="consumed") == 4
    assert delta("ehc_consumer_records_total", **consumer, outcome="parked") == 1
    assert delta("ehc_intake_inputs_total", source="canonical", outcome="published") == 1
    assert delta("ehc_intake_inputs_total", source="canonical", outcome="duplicate") == 1
    assert delta("ehc_dead_letters_parked_total", **consumer, why="failed") == 1
    assert value(after, "ehc_held_cases", service="intake") == 1


async def test_notifier_metrics_count_its_consumers(isolated: Settings, producer) -> None:
    settings = quick(isolated)
    app = notifier_bootstrap(settings)
    before = await metrics(app.api)
    event = {"specversion": "1.0", "id": "dl-ev-1", "source": "ehc/deadlines", "type": "deadline.opened",
             "subject": "case-n-1", "time": "2026-03-02T10:00:00Z", "datacontenttype": "application/json",
             "data": {"case_id": "case-n-1", "deadline_id": "case-n-1:assessment.decision",
                      "rule_id": "assessment.decision", "due_on": "2026-04-13", "status": "open",
                      "responsible": "la", "trigger_event_id": "r-1", "legal_source": "Regs 5(1)",
                      "ruleset_version": "england-2014"}}
    async with running(app):
        await producer.send_and_wait(settings.kafka.topic(topics.DEADLINE_EVENTS), json.dumps(event).encode(),
                                     key=b"case-n-1")
        await producer.send_and_wait(settings.kafka.topic(topics.DEADLINE_EVENTS), b"{not json", key=b"case-n-2")

        for outcome in ("parked", "processed"):
            await eventually(lambda o=outcome: increased(app.api, before, service="notifier", consumer="notifier",
                                                         outcome=o), 30, f"the {outcome} record counted")
