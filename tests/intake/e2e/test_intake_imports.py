"""``ehc intake import`` on the real broker and database: the DfE SEN2 sample, generated SEN2 returns
(XML and the COLLECT CSV export) and a CSV read through a mapping. Every record ends as canonical
events or a dead letter, and importing the same data again publishes nothing new."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.intake.domain.sen2 import iter_sen2_xml
from services.intake.domain.sen2_synthetic import write_sen2_csv, write_sen2_xml
from services.intake.entrypoints.cli import Format, open_source, publish_source
from services.intake.service_layer.handlers import IntakeOutcome
from shared import topics
from shared.dead_letters import dead_letter_cipher, original_value
from shared.settings import Settings
from tests.e2e.harness import service_env
from tests.intake.e2e.topics_helper import all_records
from tests.paths import SEN2_SAMPLE

pytestmark = pytest.mark.infra
CIPHER = dead_letter_cipher(Settings(environment="test"))  # what the services use without a key
SAMPLE = SEN2_SAMPLE
KEY = "e2e-import-case-id-key-0123456789"


def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"intake": settings.intake.model_copy(update={"case_id_key": SecretStr(KEY)})})


async def import_path(settings: Settings, path: Path, fmt: Format, mapping: str | None = None) -> IntakeOutcome:
    source = open_source(path, fmt, key=KEY.encode(), mapping_name=mapping, lea=None, settings=settings)
    try:
        return await publish_source(settings, source)
    finally:
        source.close()


async def topic_records(settings: Settings, name: str, count: int) -> list:
    return await all_records(settings, settings.kafka.topic(name), count)


async def ehc(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    command = str(Path(sys.executable).with_name("ehc"))
    proc = await asyncio.create_subprocess_exec(command, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.skipif(not SAMPLE.exists(), reason="the SEN2 sample file is not available")
async def test_the_sen2_sample_through_the_command_line(isolated: Settings) -> None:
    env = service_env(isolated, EHC_INTAKE__CASE_ID_KEY=KEY)
    code, out, err = await ehc("intake", "import", str(SAMPLE), "--format", "sen2", env=env)
    assert code == 0, err
    assert "Imported SEN2-2024-mockup.xml (SEN2 XML return)" in out and "9 events published" in out
    expected = [json.loads(e.to_json()) for e in iter_sen2_xml(SAMPLE, case_id_key=KEY.encode())]
    records = await topic_records(isolated, topics.CASE_EVENTS, len(expected))
    assert sorted((json.loads(r.value) for r in records), key=lambda e: e["id"]) == sorted(expected,
                                                                                         key=lambda e: e["id"])
    assert all(r.key == json.loads(r.value)["subject"].encode() for r in records)

    code, out, err = await ehc("intake", "import", str(SAMPLE), "--format", "sen2", env=env)
    assert code == 0, err
    assert "0 events published" in out and "9 duplicates skipped" in out
    assert len(await topic_records(isolated, topics.CASE_EVENTS, len(expected))) == len(expected)


async def test_generated_sen2_xml_and_csv_export(isolated: Settings, tmp_path: Path) -> None:
    settings = keyed(isolated)
    xml = write_sen2_xml(tmp_path / "return.xml", 300, 2025, seed=17)
    export = write_sen2_csv(tmp_path / "export", 300, 2025, seed=17)
    implied = sum(xml.expected_events.values())

    first = await import_path(settings, xml.path, Format.sen2)
    # Two requests of one person with the same ReceivedDate are one request: the same event ids.
    assert first.published + first.duplicates == implied
    assert first.rejected == xml.expected_rejected_requests > 0 and first.rejected_before == 0
    again = await import_path(settings, xml.path, Format.sen2)
    assert (again.published, again.duplicates, again.rejected_before) == (0, implied, first.rejected)
    # The CSV export of the same records gives the same event ids: nothing new either.
    from_csv = await import_path(settings, export.path, Format.sen2)
    assert (from_csv.published, from_csv.duplicates, from_csv.rejected) == (0, implied, first.rejected)

    events = await topic_records(settings, topics.CASE_EVENTS, first.published)
    ids = [json.loads(r.value)["id"] for r in events]
    assert len(ids) == len(set(ids)) == first.published
    assert Counter(json.loads(r.value)["type"] for r in events) <= xml.expected_events
    for record in events:
        for value in xml.sensitive_values:
            assert value.encode() not in record.value
    dead = await topic_records(settings, topics.INTAKE_DEAD_LETTER, 2 * first.rejected)
    assert len(dead) == 2 * first.rejected  # the XML's (once, though imported twice) and the CSV export's
    letters = [json.loads(r.value)["data"] for r in dead]
    assert {d["channel"] for d in letters} == {"file"}
    assert {d["input_source"] for d in letters} == {"return.xml", "export"}
    assert all(d["reason"] == "field ReceivedDate is missing" and d["location"].startswith("person ")
               for d in letters)
    assert all(original_value(d, CIPHER).lstrip().startswith(b"<Requests")
               for d in letters if d["input_source"] == "return.xml")


async def test_a_csv_with_a_mapping(isolated: Settings, tmp_path: Path) -> None:
    settings = keyed(isolated)
    path = tmp_path / "caseflow.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["msg_id", "case_ref", "status", "status_date", "recorded_at", "plan_ref", "parent_name",
                         "parent_email", "contact_consent", "contact_pref"])
        for i in range(1, 41):
            status = ["REQ_RCVD", "DEC_ASSESS", "FINAL_ISSUED", "REVIEW_MTG"][i % 4]
            email = f"parent{i}@example.org" if i % 10 == 0 else ""
            writer.writerow([f"CF-{i}", f"CF/2026/{i % 7}", status, "05/01/2026", "05/01/2026 09:00",
                             f"PLAN-{i}", "A Parent" if email else "", email, "Y" if email else "", "EMAIL"])
        writer.writerow(["CF-41", "CF/2026/1", "TELEPORTED", "05/01/2026", "05/01/2026 09:00", "", "", "", "", ""])
        writer.writerow(["CF-42", "CF/2026/1", "REQ_RCVD", "31/02/2026", "05/01/2026 09:00", "", "", "", "", ""])

    first = await import_path(settings, path, Format.csv, "caseflow")
    assert (first.published, first.contacts, first.rejected) == (40, 4, 2)
    again = await import_path(settings, path, Format.csv, "caseflow")
    assert (again.published, again.duplicates, again.contacts, again.contacts_duplicates, again.rejected_before) == (
        0, 40, 0, 4, 2)
    events = await topic_records(settings, topics.CASE_EVENTS, 40)
    assert sorted(json.loads(r.value)["id"] for r in events) == sorted(f"CF-{i}" for i in range(1, 41))
    assert not any(b"example.org" in r.value or b"CF/2026" in r.value for r in events)
    contacts = await topic_records(settings, topics.CONTACTS, 4)
    assert len(contacts) == 4 and all(b"example.org" in r.value for r in contacts)
    dead = await topic_records(settings, topics.INTAKE_DEAD_LETTER, 2)
    letters = sorted((json.loads(r.value)["data"] for r in dead), key=lambda d: d["location"])
    assert [d["location"] for d in letters] == ["line 42", "line 43"]
    header = path.read_bytes().splitlines(keepends=True)[0]
    assert all(original_value(d, CIPHER).startswith(header) for d in letters)
    assert 40 + len(dead) == 42  # every row: an event or a dead letter
