"""The webhook binds identity to data and does bounded work (issue 13): a sender publishes only the
CloudEvents sources it owns, de-duplication is keyed on the authenticated sender, one bad event in a
batch (a NUL in its source) is dead-lettered alone while the others are accepted, timestamps and
batch sizes are bounded, and the replay table is pruned."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, insert, select

from services.intake.adapters import tables
from services.intake.bootstrap import bootstrap
from services.intake.entrypoints.http import sign
from shared import topics
from shared.settings import Settings
from tests.conftest import read_topic
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
SECRETS = {"cms-a": "secret-of-system-a-0123", "cms-b": "secret-of-system-b-0123"}


def configured(settings: Settings, **intake: object) -> Settings:
    cfg = {"webhook_secrets": {k: SecretStr(v) for k, v in SECRETS.items()},
           "webhook_sources": {"cms-a": ["cms/a", "cms/shared"], "cms-b": ["cms/b", "cms/shared"]}, **intake}
    return settings.model_copy(update={"intake": settings.intake.model_copy(update=cfg)})


def headers(sender: str, body: bytes, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or str(int(time.time()))
    return {"X-EHC-Source": sender, "X-EHC-Timestamp": stamp, "X-EHC-Signature": sign(SECRETS[sender], stamp, body),
            "Content-Type": "application/json"}


def event(event_id: str, source: str, case_id: str = "case-wi") -> dict:
    raw = json.loads(case_event(event_id, case_id, "ehc.request.received", "2026-01-05", route="request",
                                requested_by="parent"))
    return raw | {"source": source}


def client(intake) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=intake.webhook), base_url="http://intake")


async def test_a_sender_cannot_publish_or_suppress_another_senders_events(isolated: Settings) -> None:
    settings = configured(isolated)
    intake = bootstrap(settings)
    async with running(intake), client(intake) as http:
        forged = json.dumps(event("e-1", "cms/a/team-1")).encode()
        refused = await http.post("/v1/events", content=forged, headers=headers("cms-b", forged))
        assert refused.status_code == 422 and refused.json()["rejected"] == 1
        assert "cms-b may not publish" in refused.json()["errors"][0]
        genuine = await http.post("/v1/events", content=forged, headers=headers("cms-a", forged))
        assert genuine.status_code == 202 and genuine.json()["accepted"] == 1  # not suppressed by the forgery

        # a source both may use: each sender's ids are its own
        shared_b = json.dumps(event("e-2", "cms/shared")).encode()
        assert (await http.post("/v1/events", content=shared_b, headers=headers("cms-b", shared_b))).json()[
            "accepted"] == 1
        shared_a = json.dumps(event("e-2", "cms/shared", "case-wi2")).encode()
        from_a = await http.post("/v1/events", content=shared_a, headers=headers("cms-a", shared_a))
        assert from_a.status_code == 202 and from_a.json()["accepted"] == 1, from_a.text
        published = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS),
                                     lambda rs: len(rs) >= 3)
    assert sorted((json.loads(r.value)["id"], json.loads(r.value)["subject"]) for r in published) == [
        ("e-1", "case-wi"), ("e-2", "case-wi"), ("e-2", "case-wi2")]


async def test_a_nul_in_one_events_source_dead_letters_that_event_only(isolated: Settings) -> None:
    settings = configured(isolated)
    intake = bootstrap(settings)
    bad = event("nul-1", "cms/a/x\x00y")
    body = json.dumps([event("ok-1", "cms/a"), bad, event("ok-2", "cms/a/x")]).encode()
    async with running(intake), client(intake) as http:
        now = int(time.time())
        for ago in (0, 1):  # a retry of the batch is answered the same way (nothing published twice)
            stamp = str(now - ago)
            answer = await http.post("/v1/events", content=body, headers=headers("cms-a", body, stamp))
            assert answer.status_code == 422, answer.text
            assert answer.json()["rejected"] == 1 and "source" in answer.json()["errors"][0]
        dead = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.INTAKE_DEAD_LETTER),
                                lambda rs: len(rs) >= 2)
        published = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS),
                                     lambda rs: len(rs) >= 2)
    assert sorted(json.loads(r.value)["id"] for r in published) == ["ok-1", "ok-2"]
    letter = json.loads(dead[0].value)["data"]
    assert json.loads(base64.b64decode(letter["original_base64"]))["id"] == "nul-1"
    assert letter["location"] == "item 1" and "control character" in letter["reason"]


async def test_timestamps_and_batches_are_bounded_and_the_replay_table_is_pruned(isolated: Settings) -> None:
    settings = configured(isolated, webhook_max_events=3)
    intake = bootstrap(settings)
    async with running(intake), client(intake) as http:
        one = json.dumps(event("ts-1", "cms/a")).encode()
        for stamp in ("9" * 5000, "-1", str(2 ** 70), "1e9", " 1"):
            answer = await http.post("/v1/events", content=one, headers=headers("cms-a", one, stamp))
            assert answer.status_code == 401 and answer.json()["error"] == "stale_timestamp", (stamp[:10], answer.text)

        four = json.dumps([event(f"b-{i}", "cms/a") for i in range(4)]).encode()
        too_many = await http.post("/v1/events", content=four, headers=headers("cms-a", four))
        assert too_many.status_code == 413 and too_many.json()["error"] == "too_many_events"

        old = datetime.now(UTC) - timedelta(days=2)
        async with intake.sessions() as session, session.begin():
            rows = [{"source": "cms-a", "signature": f"{i:064x}", "received_at": old} for i in range(50)]
            await session.execute(insert(tables.webhook_signatures), rows)
        ok = await http.post("/v1/events", content=one, headers=headers("cms-a", one))
        assert ok.status_code == 202
        async with intake.sessions() as session:
            left = await session.scalar(select(func.count()).select_from(tables.webhook_signatures))
    assert left == 1  # only the signature just used (within the replay window) is kept
