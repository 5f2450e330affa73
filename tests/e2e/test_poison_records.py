"""A bad record never stops a service (issue 13): on every input topic, a poison record between good
ones is parked on the service's dead-letter topic (reason, original bytes encrypted, time), the good
ones are processed, a later record of the poisoned case is held behind it (never applied out of
order), and a replay after the fix re-drives the held records in order."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.deadlines.bootstrap import DomainEngine
from services.deadlines.bootstrap import bootstrap as deadlines_bootstrap
from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.notifier.adapters import tables as notifier_tables
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from shared import topics
from shared.contracts import RecordParked
from shared.dead_letters import DeadLetters
from shared.settings import Settings
from tests.conftest import eventually, read_topic
from tests.e2e.harness import case_event, running, service_env

pytestmark = pytest.mark.infra
NESTED = b'{"specversion": "1.0", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


def quick(settings: Settings) -> Settings:
    return settings.model_copy(update={"dead_letters": settings.dead_letters.model_copy(
        update={"retry_backoff_seconds": 0.01})})


def request(event_id: str, case: str, day: date = date(2026, 3, 2)) -> bytes:
    return case_event(event_id, case, "ehc.request.received", day, route="request", requested_by="parent")


async def parked(settings: Settings, service: str, n: int) -> list[RecordParked]:
    topic = settings.kafka.topic(topics.DEAD_LETTER_TOPICS[service])
    records = await read_topic(settings.kafka.bootstrap_servers, topic,
                               lambda rs: len([r for r in rs if b"ehc.record.parked" in r.value]) >= n, 60)
    return [RecordParked.model_validate_json(r.value) for r in records if b"ehc.record.parked" in r.value]


async def values_on(settings: Settings, topic: str, enough: Any) -> list[dict]:
    records = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topic),
                               lambda rs: enough([json.loads(r.value) for r in rs]), 60)
    return [json.loads(r.value) for r in records]


def order(letter: RecordParked) -> tuple[bool, bool]:
    """The undecodable one, the failing one, then the one held behind it (partitions differ)."""
    return "nested" not in letter.data.reason, letter.data.held_behind is not None


class FaultyEngine(DomainEngine):
    """A bug in the engine for one case (until it is 'deployed' fixed): the handler raises."""

    broken = True

    def compute(self, events: list, as_of: date) -> list:  # type: ignore[type-arg]
        if self.broken and any(e.case_id == "case-bug" for e in events):
            raise KeyError("a bug")
        return super().compute(events, as_of)


async def test_deadlines_parks_a_poison_record_holds_its_case_and_replays_it_after_the_fix(
        isolated: Settings, producer) -> None:
    settings = quick(isolated)
    app = deadlines_bootstrap(settings)
    faulty = FaultyEngine(settings.deadlines)
    app.service._engine = faulty  # noqa: SLF001 - the fault under test
    good = [f"case-good-{i}" for i in range(4)]
    case_topic = settings.kafka.topic(topics.CASE_EVENTS)
    async with running(app):
        await producer.send_and_wait(case_topic, request("g0", good[0]), key=good[0].encode())
        await producer.send_and_wait(case_topic, NESTED, key=b"case-nested",
                                     headers=[("content-type", b"application/json")])
        bug_record = request("b1", "case-bug")
        await producer.send_and_wait(case_topic, bug_record, key=b"case-bug")
        await producer.send_and_wait(case_topic, request("g1", good[1]), key=good[1].encode())
        await producer.send_and_wait(case_topic, case_event("b2", "case-bug", "ehc.case.assigned", date(2026, 3, 3),
                                                            caseworker_id="cw-1", team_id="t-1"), key=b"case-bug")
        for i, case in enumerate(good[2:], 2):
            await producer.send_and_wait(case_topic, request(f"g{i}", case), key=case.encode())
        opened = await values_on(settings, topics.DEADLINE_EVENTS,
                                 lambda es: {e["data"]["case_id"] for e in es} >= set(good))
        letters = await parked(settings, "deadlines", 3)
        assert "case-bug" not in {e["data"]["case_id"] for e in opened}
        nested, bug, held = sorted(letters, key=order)
        assert "nested deeper" in nested.data.reason and nested.data.attempts == 0
        assert bug.data.reason == "KeyError" and bug.data.attempts == settings.dead_letters.max_attempts
        assert held.data.held_behind == bug.id and held.data.attempts == 0
        dead_letters: DeadLetters = app.dead_letters  # type: ignore[assignment]
        assert dead_letters.original(nested).value == NESTED  # the original bytes, encrypted at rest
        assert NESTED[:40] not in nested.data.original_encrypted.encode()
        assert dead_letters.original(bug).value == bug_record
        assert await dead_letters.held_case_count() == 2

        faulty.broken = False  # the fix is deployed: replay re-drives both records of the case, in order
        assert await dead_letters.replay([bug.id]) == [bug.id, held.id]
        events = await values_on(settings, topics.DEADLINE_EVENTS,
                                 lambda es: any(e["data"]["case_id"] == "case-bug" for e in es))
        await eventually(lambda: _held_count_is(dead_letters, 1), 30, "case-bug released")
    assert any(e["data"]["case_id"] == "case-bug" for e in events)


async def _held_count_is(dead_letters: DeadLetters, n: int) -> bool:
    return await dead_letters.held_case_count() == n


async def test_intake_isolates_poison_records_between_good_ones(isolated: Settings, producer) -> None:
    settings = quick(isolated)
    app = intake_bootstrap(settings)
    topic = settings.kafka.topic(topics.INTAKE_CANONICAL)
    nul_source = json.loads(request("nul-1", "case-nul"))
    nul_source["source"] = "cms/\x00/x"
    async with running(app):
        await producer.send_and_wait(topic, request("ok-1", "case-ok-1"), key=b"case-ok-1")
        await producer.send_and_wait(topic, NESTED, key=b"case-nested", headers=[("content-type", b"application/json")])
        await producer.send_and_wait(topic, b"{not json", key=b"case-bad-json",
                                     headers=[("content-type", b"application/json")])
        await producer.send_and_wait(topic, b"\xff\xfe not utf-8", key=b"case-bad-utf8",
                                     headers=[("content-type", b"text/plain")])
        await producer.send_and_wait(topic, json.dumps(nul_source).encode(), key=b"case-nul")
        await producer.send_and_wait(topic, request("ok-2", "case-ok-2"), key=b"case-ok-2")
        await producer.send_and_wait(topic, request("nul-2", "case-nul"), key=b"case-nul")
        await producer.send_and_wait(topic, request("ok-3", "case-ok-3"), key=b"case-ok-3",
                                     headers=[("trace", b"\xff\xfe not utf-8")])  # a header FastStream cannot read
        published = await values_on(settings, topics.CASE_EVENTS,
                                     lambda es: {e["id"] for e in es} >= {"ok-1", "ok-2", "ok-3"})
        letters = await parked(settings, "intake", 3)
    assert {e["id"] for e in published} == {"ok-1", "ok-2", "ok-3"}
    nested, nul, held = sorted(letters, key=order)
    assert "nested deeper" in nested.data.reason
    assert nul.data.reason.startswith("database refused it") and nul.data.attempts == settings.dead_letters.max_attempts
    assert held.data.held_behind == nul.id
    assert app.dead_letters.original(nul).value == json.dumps(nul_source).encode()  # type: ignore[union-attr]


async def test_notifier_isolates_poison_contacts_and_deadline_events(isolated: Settings, producer) -> None:
    settings = quick(isolated)
    app = notifier_bootstrap(settings)
    contacts = settings.kafka.topic(topics.CONTACTS)
    deadline_topic = settings.kafka.topic(topics.DEADLINE_EVENTS)

    def contact(case: str, event_id: str) -> bytes:
        return json.dumps({"specversion": "1.0", "id": event_id, "source": "cms/test", "type": "ehc.contacts.updated",
                           "subject": case, "time": "2026-03-02T10:00:00Z", "datacontenttype": "application/json",
                           "data": {"contacts": [{"email": "parent@example.org", "consent": True}]}}).encode()

    async with running(app):
        await producer.send_and_wait(contacts, contact("case-c1", "c1"), key=b"case-c1")
        await producer.send_and_wait(contacts, NESTED, key=b"case-c-poison")
        await producer.send_and_wait(contacts, contact("case-c2", "c2"), key=b"case-c2")
        await producer.send_and_wait(deadline_topic, b"\xff\xfe", key=b"case-d-poison",
                                     headers=[("content-type", b"text/plain")])
        letters = await parked(settings, "notifier", 2)

        async def stored() -> bool:
            async with app.sessions() as session:
                cases = set((await session.scalars(select(notifier_tables.contacts.c.case_id))).all())
            return cases >= {"case-c1", "case-c2"}

        await eventually(stored, 30, "the good contacts stored")
    assert {x.data.consumer for x in letters} == {"notifier-contacts", "notifier"}
    assert all(x.data.reason.startswith(("undecodable", "invalid")) for x in letters)


async def ehc(settings: Settings, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(str(Path(sys.executable).with_name("ehc")), *args,
                                                env=service_env(settings), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, _err = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_dead_letters_cli_lists_shows_and_replays(isolated: Settings, producer) -> None:
    settings = quick(isolated)
    app = deadlines_bootstrap(settings)
    faulty = FaultyEngine(settings.deadlines)
    app.service._engine = faulty  # noqa: SLF001 - the fault under test
    case_topic = settings.kafka.topic(topics.CASE_EVENTS)
    first = request("cli-1", "case-bug")
    async with running(app):
        await producer.send_and_wait(case_topic, first, key=b"case-bug")
        await producer.send_and_wait(case_topic, case_event("cli-2", "case-bug", "ehc.case.assigned", date(2026, 3, 3),
                                                            caseworker_id="cw-1", team_id="t-1"), key=b"case-bug")
        await parked(settings, "deadlines", 2)

        code, out = await ehc(settings, "deadlines", "dead-letters", "list", "--json")
        rows = [json.loads(line) for line in out.splitlines()]
        assert code == 0 and [r["state"] for r in rows] == ["held", "held"]
        assert rows[0]["reason"] == "KeyError" and rows[1]["held_behind"] == rows[0]["id"]
        assert "parent" not in out and "cw-1" not in out  # never the content

        code, out = await ehc(settings, "deadlines", "dead-letters", "show", rows[0]["id"], "--original")
        shown = json.loads(out)
        assert code == 0 and base64.b64decode(shown["original"]["value_base64"]) == first
        assert base64.b64decode(shown["original"]["key_base64"]) == b"case-bug"

        code, _ = await ehc(settings, "deadlines", "dead-letters", "replay", "dl-nonesuch")
        assert code == 1

        faulty.broken = False
        code, out = await ehc(settings, "deadlines", "dead-letters", "replay", rows[0]["id"])
        assert code == 0 and out.split() == ["replayed", rows[0]["id"], "replayed", rows[1]["id"]]
        await values_on(settings, topics.DEADLINE_EVENTS,
                        lambda es: any(e["data"]["case_id"] == "case-bug" for e in es))

        async def released() -> bool:
            _code, listed = await ehc(settings, "deadlines", "dead-letters", "list", "--held")
            return listed.strip() == ""

        await eventually(released, 60, "the held case released")
