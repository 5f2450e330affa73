"""A council's own Kafka topic read through its mapping, and a webhook source with a mapping, on the
real broker and database: every input ends as canonical events or a dead letter, contacts go to
ehc.contacts only, and a message delivered twice publishes nothing twice."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from pydantic import SecretStr

from services.intake.bootstrap import bootstrap
from services.intake.entrypoints.http import sign
from shared import topics
from shared.dead_letters import dead_letter_cipher, original_value
from shared.kafka import ensure_topics
from shared.settings import Settings
from shared.topics import TopicSpec
from tests.conftest import read_topic
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
CIPHER = dead_letter_cipher(Settings(environment="test"))  # what the services use without a key
KEY = "e2e-case-id-key-0123456789abcdef"
PARENT = {"parent_name": "Jolene Testparent", "parent_email": "jolene.testparent@example.org",
          "parent_mobile": "07700 900123", "contact_consent": "Y", "contact_pref": "SMS"}


def caseflow(msg_id: str, status: str, case_ref: str = "CF/2026/0042", **fields: str) -> dict[str, str]:
    return {"msg_id": msg_id, "case_ref": case_ref, "status": status, "status_date": "16/02/2026",
            "recorded_at": "16/02/2026 10:12", **fields}


def with_intake(settings: Settings, **intake: object) -> Settings:
    return settings.model_copy(update={"intake": settings.intake.model_copy(update=intake)})


def values(records: list) -> list[dict]:
    return [json.loads(r.value) for r in records]


def assert_no_personal_data(records: list, *personal: str) -> None:
    for record in records:
        for text in (record.value, record.key or b""):
            for value in personal:
                assert value.encode() not in text


async def test_a_mapped_source_topic(isolated: Settings, producer) -> None:
    source_topic = isolated.kafka.topic_prefix + "caseflow.status"
    await ensure_topics(isolated.kafka, [TopicSpec(source_topic, 3)])
    settings = with_intake(isolated, case_id_key=SecretStr(KEY), source_topics={"caseflow": source_topic})
    good = [
        caseflow("CF-1", "REQ_RCVD", requested_by="SCH", **PARENT),
        caseflow("CF-2", "DEC_ASSESS", notice_date="17/02/2026"),
        caseflow("CF-3", "FINAL_ISSUED", plan_ref="PLAN-42", status_date="01/06/2026"),
        caseflow("CF-4", "ALLOC", caseworker="cw-17", team="north"),
        caseflow("CF-5", "REQ_RCVD", case_ref="CF/2026/0043"),
    ]
    bad = {
        b"{not json": "message is not valid JSON",
        json.dumps(caseflow("CF-6", "TELEPORTED")).encode(): "field status has a code that is not in",
        json.dumps({**caseflow("CF-7", "REQ_RCVD"), "case_ref": ""}).encode(): "(case reference) is missing",
        json.dumps(caseflow("CF-8", "DEC_ASSESS", status_date="31/02/2026")).encode(): "status_date is not a valid",
    }
    messages = [json.dumps(m).encode() for m in good]
    async with running(bootstrap(settings)):
        for value in [*messages[:2], *bad, *messages[2:]]:
            await producer.send_and_wait(source_topic, value, key=b"CF/2026/0042")
        events = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS),
                                  lambda rs: len(rs) >= len(good))
        # Delivered again (a council's system re-sending): the same msg ids publish nothing new. A
        # last new message behind them, on the same partition, shows they have been processed.
        for value in messages:
            await producer.send_and_wait(source_topic, value, key=b"CF/2026/0042")
        await producer.send_and_wait(source_topic, json.dumps(caseflow("CF-9", "REVIEW_MTG")).encode(),
                                     key=b"CF/2026/0042")
        events = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS),
                                  lambda rs: any(json.loads(r.value)["id"] == "CF-9" for r in rs))
        dead = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.INTAKE_DEAD_LETTER),
                                lambda rs: len(rs) >= len(bad))
        contacts = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CONTACTS),
                                    lambda rs: len(rs) >= 1)

    published = values(events)
    assert sorted(e["id"] for e in published) == ["CF-1", "CF-2", "CF-3", "CF-4", "CF-5", "CF-9"]  # none twice
    assert {e["type"] for e in published} >= {"ehc.request.received", "ehc.assessment.decided",
                                              "ehc.plan.issued", "ehc.case.assigned", "ehc.review.meeting_held"}
    assert all(e["source"] == "cms/caseflow/example" and e["subject"].startswith("c-") for e in published)
    assert len({e["subject"] for e in published}) == 2
    assert all(r.key == json.loads(r.value)["subject"].encode() for r in events)
    assert_no_personal_data(events, "CF/2026", "Jolene", "jolene.testparent", "07700")
    # every input is either a canonical event or a dead letter
    assert len(good) + len(bad) == len({e["id"] for e in published} - {"CF-9"}) + len(dead)

    [contact] = values(contacts)
    case_of_cf1 = next(e["subject"] for e in published if e["id"] == "CF-1")
    assert contact["type"] == "ehc.contacts.updated" and contacts[0].key == case_of_cf1.encode()
    assert contact["data"]["contacts"][0]["email"] == PARENT["parent_email"]

    letters = {original_value(d["data"], CIPHER): d["data"] for d in values(dead)}
    assert set(letters) == set(bad)
    for original, reason in bad.items():
        letter = letters[original]
        assert reason in letter["reason"]
        assert (letter["channel"], letter["input_source"], letter["original_topic"]) == ("kafka", "caseflow",
                                                                                         source_topic)
        assert letter["original_offset"] is not None and letter["original_key_sha256"]
    assert all(r.key == b"rejected" for r in dead)


async def test_a_webhook_source_with_a_mapping(isolated: Settings) -> None:
    secret = "webhook-secret-cf"
    settings = with_intake(isolated, case_id_key=SecretStr(KEY),
                           webhook_secrets={"cms-cf": SecretStr(secret), "cms-a": SecretStr(secret)},
                           webhook_mappings={"cms-cf": "caseflow"}, webhook_sources={"cms-a": ["cms/test/e2e"]})
    intake = bootstrap(settings)

    def headers(source: str, body: bytes, ago: int = 0) -> dict[str, str]:
        stamp = str(int(time.time()) - ago)
        return {"X-EHC-Source": source, "X-EHC-Timestamp": stamp, "X-EHC-Signature": sign(secret, stamp, body),
                "Content-Type": "application/json"}

    batch = json.dumps([caseflow("WH-1", "REQ_RCVD", **PARENT), caseflow("WH-2", "DEC_REFUSE"),
                        caseflow("WH-3", "NOPE")]).encode()
    single = json.dumps(caseflow("WH-4", "DEC_ASSESS")).encode()
    canonical = case_event("can-1", "case-can", "ehc.request.received", "2026-02-16", route="request",
                           requested_by="parent")
    async with running(intake), httpx.AsyncClient(transport=httpx.ASGITransport(app=intake.webhook),
                                                  base_url="http://intake") as client:
        first = await client.post("/v1/events", content=batch, headers=headers("cms-cf", batch))
        assert first.status_code == 422, first.text
        assert first.json() | {"errors": None} == {"error": "invalid_events", "accepted": 2, "duplicates": 0,
                                                    "contacts": 1, "rejected": 1, "errors": None}
        assert "field status has a code" in first.json()["errors"][0]
        again = await client.post("/v1/events", content=batch, headers=headers("cms-cf", batch, ago=2))
        assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
        one = await client.post("/v1/events", content=single, headers=headers("cms-cf", single))
        assert one.status_code == 202 and one.json()["accepted"] == 1
        plain = await client.post("/v1/events", content=canonical, headers=headers("cms-a", canonical))
        assert plain.status_code == 202 and plain.json()["accepted"] == 1  # no mapping: canonical events
        events = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS),
                                  lambda rs: len(rs) >= 4)
        dead = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.INTAKE_DEAD_LETTER),
                                lambda rs: len(rs) >= 2)
    assert sorted(e["id"] for e in values(events)) == ["WH-1", "WH-2", "WH-4", "can-1"]
    assert_no_personal_data(events, "Jolene", "jolene.testparent", "07700", "CF/2026")
    letters = [d["data"] for d in values(dead)]
    assert [(d["channel"], d["input_source"], d["location"]) for d in letters] == [("webhook", "cms-cf", "item 2")] * 2
    assert original_value(letters[0], CIPHER) == json.dumps(caseflow("WH-3", "NOPE")).encode()
