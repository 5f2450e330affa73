"""Bad input is never lost (issue 2 acceptance): a malformed or invalid event, on intake's Kafka
topic or on the webhook, gets a clear error and lands on ehc.intake.dead-letter with its reason
and the original bytes; good events in the same batch are published."""

from __future__ import annotations

import json
import time
from datetime import date

import httpx
import pytest
from pydantic import SecretStr

from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.intake.entrypoints.http import sign
from shared import topics
from shared.dead_letters import dead_letter_cipher, original_value
from shared.settings import Settings
from tests.conftest import read_topic
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
CIPHER = dead_letter_cipher(Settings(environment="test"))  # what the services use without a key
SECRET = "s3cret-for-tests"


def letters(records: list) -> list[dict]:
    return [json.loads(r.value)["data"] for r in records]


async def test_invalid_events_on_the_intake_topic_go_to_the_dead_letter_topic(isolated: Settings, producer) -> None:
    good = case_event("ok-1", "case-dl", "ehc.request.received", date(2026, 3, 2), route="request",
                      requested_by="parent")
    bad = {
        b"{not json": "not valid JSON",
        case_event("bad-date", "case-dl", "ehc.request.received", "2026-02-30"): "occurred_on",
        case_event("bad-type", "case-dl", "ehc.request.teleported", date(2026, 3, 2)): "unknown event type",
        case_event("no-decision", "case-dl", "ehc.assessment.decided", date(2026, 3, 2)): "decision: Field required",
    }
    async with running(intake_bootstrap(isolated)):
        topic = isolated.kafka.topic(topics.INTAKE_CANONICAL)
        for raw in [*bad, good]:
            await producer.send_and_wait(topic, raw, key=b"case-dl")
        dead = await read_topic(isolated.kafka.bootstrap_servers, isolated.kafka.topic(topics.INTAKE_DEAD_LETTER),
                                lambda rs: len(rs) >= len(bad))
        published = await read_topic(isolated.kafka.bootstrap_servers, isolated.kafka.topic(topics.CASE_EVENTS),
                                     lambda rs: len(rs) >= 1)
    assert [json.loads(r.value)["id"] for r in published] == ["ok-1"]
    by_original = {original_value(d, CIPHER): d for d in letters(dead)}
    assert set(by_original) == set(bad)
    for raw, expected in bad.items():
        letter = by_original[raw]
        assert expected in letter["reason"]
        assert letter["channel"] == "kafka" and letter["input_source"] == "canonical"
        assert letter["original_topic"] == topic and letter["original_offset"] is not None
    assert all(r.key == b"rejected" for r in dead)  # never the case reference


async def test_webhook_signed_unsigned_stale_replayed_malformed_oversized(isolated: Settings) -> None:
    settings = isolated.model_copy(update={"intake": isolated.intake.model_copy(update={
        "webhook_secrets": {"cms-a": SecretStr(SECRET)}, "webhook_sources": {"cms-a": ["cms/test"]},
        "webhook_max_body_bytes": 20_000})})
    intake = intake_bootstrap(settings)

    def headers(body: bytes, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
        stamp = str(ts if ts is not None else int(time.time()))
        return {"X-EHC-Source": "cms-a", "X-EHC-Timestamp": stamp, "X-EHC-Signature": sign(secret, stamp, body),
                "Content-Type": "application/json"}

    batch = json.dumps([json.loads(case_event(f"wh-{i}", f"case-wh{i}", "ehc.request.received", date(2026, 1, 5),
                                              route="request", requested_by="school")) for i in range(3)]).encode()
    async with running(intake), httpx.AsyncClient(transport=httpx.ASGITransport(app=intake.webhook),
                                                  base_url="http://intake") as client:
        ok = await client.post("/v1/events", content=batch, headers=headers(batch))
        assert ok.status_code == 202 and ok.json()["accepted"] == 3

        replay = await client.post("/v1/events", content=batch, headers=headers(batch))
        assert replay.status_code in (202, 409)  # a new timestamp is a new request: idempotent on event ids
        assert replay.status_code == 409 or replay.json()["accepted"] == 0
        same = headers(batch, ts=int(time.time()) - 5)
        first = await client.post("/v1/events", content=batch, headers=same)
        again = await client.post("/v1/events", content=batch, headers=same)
        assert first.status_code == 202 and first.json()["duplicates"] == 3
        assert again.status_code == 409 and again.json()["error"] == "replayed"

        unsigned = await client.post("/v1/events", content=batch, headers={"X-EHC-Source": "cms-a"})
        assert unsigned.status_code == 401
        forged = await client.post("/v1/events", content=batch, headers=headers(batch, secret="wrong"))
        assert forged.status_code == 401 and forged.json()["error"] == "bad_signature"
        stale = await client.post("/v1/events", content=batch, headers=headers(batch, ts=int(time.time()) - 3600))
        assert stale.status_code == 401 and stale.json()["error"] == "stale_timestamp"

        malformed = b'{"specversion": "1.0", "id": "wh-bad"'
        bad = await client.post("/v1/events", content=malformed, headers=headers(malformed))
        assert bad.status_code == 422 and bad.json()["rejected"] == 1
        assert "not valid JSON" in bad.json()["errors"][0]

        huge = b"[" + b" " * 30_000 + b"]"
        too_big = await client.post("/v1/events", content=huge, headers=headers(huge))
        assert too_big.status_code == 413

        dead = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.INTAKE_DEAD_LETTER),
                                lambda rs: len(rs) >= 1)
        published = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS),
                                     lambda rs: len(rs) >= 3)
    assert sorted(json.loads(r.value)["id"] for r in published) == ["wh-0", "wh-1", "wh-2"]  # none twice
    assert [original_value(d, CIPHER) for d in letters(dead)] == [malformed]
    assert letters(dead)[0]["channel"] == "webhook" and letters(dead)[0]["input_source"] == "cms-a"
