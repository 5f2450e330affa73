"""Intake's service layer on SQLite (no broker): the canonical converter, de-duplication by (source,
event id) for events, contacts and dead letters, dead-letter ids and size, outbox order."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.intake.adapters import tables
from services.intake.bootstrap import MIGRATIONS, SERVICE
from services.intake.domain.mapping import load_mappings
from services.intake.domain.results import Rejection
from services.intake.service_layer.handlers import (
    MAX_ORIGINAL_BYTES,
    IntakeService,
    RawInput,
    canonical_converter,
    mapping_converter,
)
from services.intake.service_layer.imports import import_items
from shared.contracts import ContactsUpdated, build_case_event
from shared.db import create_engine_for, migrate, session_factory
from shared.dead_letters import original_value
from shared.settings import KafkaSettings, Settings

KEY = b"unit-case-id-key-0123456789abcdef"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CIPHER = Fernet(Fernet.generate_key())


def envelope(event_id: str, type_: str = "ehc.request.received", **data: object) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": "cms/unit", "type": type_, "subject": "case-u1",
            "time": "2026-03-02T09:00:00Z", "data": {"occurred_on": "2026-03-02", **data}}


def raw(value: bytes | dict, channel: str = "kafka", offset: int | None = 7, **extra: object) -> RawInput:
    body = json.dumps(value).encode() if isinstance(value, dict) else value
    return RawInput(value=body, channel=channel, input_source="unit", topic="t.source" if channel == "kafka" else None,
                    partition=0 if channel == "kafka" else None, offset=offset if channel == "kafka" else None,
                    **extra)  # type: ignore[arg-type]


class FakeRelay:
    def __init__(self) -> None:
        self.drains = 0

    async def drain(self) -> int:
        self.drains += 1
        return 0


@pytest.fixture
async def intake_db(tmp_path: Path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/intake.db")
    engine = create_engine_for(settings, SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, None)
    sessions = session_factory(engine)
    yield IntakeService(sessions, KafkaSettings(topic_prefix="u."), CIPHER), sessions
    await engine.dispose()


async def outbox_rows(sessions) -> list:
    async with sessions() as session:
        return (await session.execute(select(tables.outbox).order_by(tables.outbox.c.id))).all()


# --- the canonical converter ----------------------------------------------------------------

def test_contacts_are_routed_by_their_parsed_type_not_by_bytes():
    contacts = {"specversion": "1.0", "id": "ct-1", "source": "cms/unit", "type": "ehc.contacts.updated",
                "subject": "case-u1", "time": "2026-03-02T09:00:00Z",
                "data": {"contacts": [{"name": "A Parent", "email": "a.parent@example.org", "consent": True}]}}
    [item] = canonical_converter(raw(contacts))
    assert isinstance(item, ContactsUpdated)
    # A case event that merely mentions the contacts type in free text is still a case event.
    mention = envelope("ex-1", "ehc.exception.recorded", exception="E3", reason='see "ehc.contacts.updated"')
    [event] = canonical_converter(raw(mention))
    assert event.type == "ehc.exception.recorded"
    # ... and a contacts message with the type spelled differently in the bytes is still contacts.
    spaced = json.dumps(contacts, indent=2).replace('"type": "ehc.contacts.updated"',
                                                    '"type"  :  "ehc.contacts\\u002eupdated"').encode()
    [again] = canonical_converter(raw(spaced))
    assert isinstance(again, ContactsUpdated)


def test_canonical_rejections_never_echo_values():
    secret_email = "not-an-email-jo.bloggs"
    bad_contacts = {"specversion": "1.0", "id": "ct-2", "source": "cms/unit", "type": "ehc.contacts.updated",
                    "subject": "case-u1", "time": "2026-03-02T09:00:00Z",
                    "data": {"contacts": [{"name": "Jo Bloggs", "email": secret_email, "consent": True}]}}
    cases = [
        (b"{not json", "not valid JSON"),
        (json.dumps(envelope("e-1", "ehc.request.teleported")).encode(), "type: unknown event type"),
        (json.dumps(envelope("e-2", "ehc.request.received", requested_by="Jo Bloggs")).encode(), "requested_by"),
        (json.dumps(bad_contacts).encode(), "not a valid email address"),
        (json.dumps({**envelope("e-3"), "subject": "A123456789012"}).encode(), "subject looks like a UPN"),
        (json.dumps(envelope("e-4", occurred_on="0202-01-01")).encode(), "not a plausible date"),
    ]
    for body, expected in cases:
        [rejection] = canonical_converter(raw(body, location="item 3"))
        assert isinstance(rejection, Rejection)
        assert expected in rejection.reason
        assert rejection.original == body and rejection.location == "item 3"
        for value in ("teleported", "Jo Bloggs", secret_email, "A123456789012", "0202"):
            assert value not in rejection.reason


def test_mapping_converter_reads_the_key_and_locates_rejections():
    caseflow = load_mappings()["caseflow"]
    convert = mapping_converter(caseflow, KEY)
    good = {"msg_id": "CF-1", "case_ref": "CF/1", "status": "REQ_RCVD", "status_date": "05/01/2026",
            "recorded_at": "05/01/2026 09:00", "parent_email": "p@example.org", "contact_consent": "Y",
            "contact_pref": "EMAIL"}
    event, contacts = convert(raw(good))
    assert event.type == "ehc.request.received" and isinstance(contacts, ContactsUpdated)
    assert event.subject == contacts.subject and event.subject.startswith("c-")
    [rejection] = convert(raw({**good, "status": "NOPE"}, location="item 2"))
    assert rejection.location == "item 2" and "status" in rejection.reason


# --- staging -----------------------------------------------------------------------------------

async def test_events_are_deduplicated_by_source_and_id_within_and_across_batches(intake_db):
    service, sessions = intake_db
    first = await service.accept([raw(envelope("a")), raw(envelope("b")), raw(envelope("a"), offset=8)])
    assert (first.published, first.duplicates, first.event_ids) == (2, 1, ["a", "b"])
    second = await service.accept([raw(envelope("b"), offset=9), raw(envelope("c"), offset=10)])
    assert (second.published, second.duplicates, second.event_ids) == (1, 1, ["c"])
    other_source = {**envelope("a"), "source": "cms/other"}
    third = await service.accept([raw(other_source, offset=11)])
    assert third.published == 1  # the same id from another source is another event
    rows = await outbox_rows(sessions)
    assert [json.loads(r.value)["id"] for r in rows] == ["a", "b", "c", "a"]
    assert {r.topic for r in rows} == {"u.ehc.case-events"} and rows[0].key == b"case-u1"


async def test_contacts_and_kafka_dead_letters_are_not_repeated_on_redelivery(intake_db):
    service, sessions = intake_db
    contacts = {"specversion": "1.0", "id": "ct-1", "source": "cms/unit", "type": "ehc.contacts.updated",
                "subject": "case-u1", "time": "2026-03-02T09:00:00Z",
                "data": {"contacts": [{"email": "a@example.org", "consent": True}]}}
    batch = [raw(envelope("a"), offset=1), raw(contacts, offset=2), raw(b"{oops", offset=3)]
    first = await service.accept(batch)
    again = await service.accept(batch)  # the same records redelivered (same topic, partition, offsets)
    assert (first.published, first.contacts, first.rejected, first.rejected_before) == (1, 1, 1, 0)
    assert (again.published, again.duplicates, again.contacts, again.contacts_duplicates, again.rejected,
            again.rejected_before) == (0, 1, 0, 1, 1, 1)
    rows = await outbox_rows(sessions)
    assert [r.topic for r in rows] == ["u.ehc.case-events", "u.ehc.contacts", "u.ehc.intake.dead-letter"]
    # The same bad bytes at another offset are another input: a new dead letter.
    later = await service.accept([raw(b"{oops", offset=4)])
    assert (later.rejected, later.rejected_before) == (1, 0)


async def test_dead_letters_keep_the_original_source_reason_and_place(intake_db):
    service, sessions = intake_db
    key = b"CF/2026/0042"
    outcome = await service.accept([RawInput(value=b"\xff\xfe not json", channel="kafka", input_source="caseflow",
                                             key=key, topic="t.cf", partition=2, offset=41)])
    assert outcome.rejected == 1 and outcome.reasons == {"message is not valid JSON": 1}
    [row] = await outbox_rows(sessions)
    letter = json.loads(row.value)
    assert row.key == b"rejected" and letter["type"] == "ehc.intake.rejected"
    assert letter["id"].startswith("dl-kafka-") and letter["source"] == "ehc/intake/kafka"
    data = letter["data"]
    assert original_value(data, CIPHER) == b"\xff\xfe not json"
    assert "original_base64" not in data and b"not json" not in row.value  # encrypted at rest (personal data)
    assert (data["channel"], data["input_source"], data["original_topic"], data["original_partition"],
            data["original_offset"]) == ("kafka", "caseflow", "t.cf", 2, 41)
    assert data["original_key_sha256"] and "CF/2026" not in row.value.decode()  # the key only hashed
    assert datetime.fromisoformat(data["received_at"]).tzinfo is not None


async def test_webhook_dead_letters_are_new_each_time_and_big_originals_are_cut(intake_db):
    service, sessions = intake_db
    huge = b"x" * (MAX_ORIGINAL_BYTES + 10)
    one = await service.accept([raw(huge, channel="webhook")])
    two = await service.accept([raw(huge, channel="webhook")])
    assert one.rejected == two.rejected == 1 and two.rejected_before == 0
    rows = await outbox_rows(sessions)
    letters = [json.loads(r.value) for r in rows]
    assert letters[0]["id"] != letters[1]["id"]
    data = letters[0]["data"]
    assert len(original_value(data, CIPHER)) == MAX_ORIGINAL_BYTES
    assert f"cut to its first {MAX_ORIGINAL_BYTES} of {MAX_ORIGINAL_BYTES + 10} bytes" in data["reason"]
    assert all(len(r.value) < 1_000_000 for r in rows)  # fits in one Kafka message


async def test_file_imports_publish_nothing_new_the_second_time(intake_db):
    service, sessions = intake_db
    relay = FakeRelay()

    def items():
        for i in range(7):
            yield build_case_event("ehc.request.received", id=f"f-{i}", source="sen2/919", case_id=f"c-{i % 3}",
                                   time=NOW, occurred_on=date(2026, 1, 5))
        yield Rejection("field ReceivedDate is missing", b"<Requests/>", "person 4 / request 1 (line 40)")

    batches: list[int] = []
    first = await import_items(service, relay, items(), input_source="return.xml", batch_size=3,
                               on_batch=lambda total, n: batches.append(n))
    second = await import_items(service, relay, items(), input_source="renamed.xml", batch_size=3)
    assert batches == [3, 3, 2] and relay.drains == 3 + 3
    assert (first.published, first.duplicates, first.rejected, first.rejected_before) == (7, 0, 1, 0)
    assert (second.published, second.duplicates, second.rejected, second.rejected_before) == (0, 7, 1, 1)
    assert first.event_ids == [] and first.reasons == {"field ReceivedDate is missing": 1}
    rows = await outbox_rows(sessions)
    assert len(rows) == 8
    letter = json.loads(rows[-1].value)
    assert letter["id"].startswith("dl-file-") and letter["data"]["location"] == "person 4 / request 1 (line 40)"
    assert letter["data"]["input_source"] == "return.xml"
