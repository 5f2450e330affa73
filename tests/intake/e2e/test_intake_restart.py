"""Intake killed (SIGKILL) in the middle of a stream on a mapped source topic and restarted, as a real
process (`ehc intake serve`): every message ends as exactly one canonical event or one dead letter,
none lost, none twice."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from shared import topics
from shared.dead_letters import dead_letter_cipher, original_value
from shared.kafka import ensure_topics
from shared.settings import Settings
from shared.topics import TopicSpec
from tests.conftest import eventually, free_port, read_topic
from tests.e2e.harness import ServiceProcess, service_env
from tests.intake.e2e.topics_helper import sizes

pytestmark = pytest.mark.infra
CIPHER = dead_letter_cipher(Settings(environment="test"))  # what the services use without a key
KEY = "e2e-restart-case-id-key-0123456789"
STATUSES = ["REQ_RCVD", "DEC_ASSESS", "FINAL_ISSUED", "REVIEW_MTG", "ALLOC"]


def message(i: int) -> bytes:
    """Every 25th message is bad (an unknown status code); the rest map to one event each."""
    status = "UNKNOWN" if i % 25 == 0 else STATUSES[i % len(STATUSES)]
    return json.dumps({"msg_id": f"CF-{i:05d}", "case_ref": f"CF/2026/{i % 211}", "status": status,
                       "status_date": "05/01/2026", "recorded_at": "05/01/2026 09:00", "plan_ref": f"P-{i}",
                       "caseworker": "cw-1", "team": "north"}).encode()


async def test_killed_mid_stream_loses_nothing_and_duplicates_nothing(isolated: Settings, producer, tmp_path) -> None:
    source_topic = isolated.kafka.topic_prefix + "caseflow.status"
    await ensure_topics(isolated.kafka, [TopicSpec(source_topic, 3)])
    case_events = isolated.kafka.topic(topics.CASE_EVENTS)
    dead_letter = isolated.kafka.topic(topics.INTAKE_DEAD_LETTER)
    env = service_env(isolated, EHC_INTAKE__HTTP_PORT=str(free_port()), EHC_INTAKE__CASE_ID_KEY=KEY,
                      EHC_INTAKE__SOURCE_TOPICS=json.dumps({"caseflow": source_topic}))
    service = ServiceProcess("intake", env, tmp_path / "intake.log")
    total, first_half = 8_000, 5_000
    bad = {message(i) for i in range(total) if i % 25 == 0}
    good_ids = {f"CF-{i:05d}" for i in range(total) if i % 25}

    async def send(numbers: range) -> None:
        futures = [await producer.send(source_topic, message(i), key=f"CF/2026/{i % 211}".encode()) for i in numbers]
        for future in futures:
            await future

    await send(range(first_half))
    await service.start()
    try:
        async def some_published() -> bool:
            return (await sizes(isolated, [case_events]))[case_events] > 0

        await eventually(some_published, 60, "the first events published")
        await service.kill()  # SIGKILL in the middle of the backlog
        at_kill = await sizes(isolated, [case_events, dead_letter])
        await send(range(first_half, total))
        await service.start()

        async def all_there() -> bool:
            now = await sizes(isolated, [case_events, dead_letter])
            return now[case_events] >= len(good_ids) and now[dead_letter] >= len(bad)

        await eventually(all_there, 90, "every message converted or dead-lettered")
        events = await read_topic(isolated.kafka.bootstrap_servers, case_events, lambda rs: len(rs) >= len(good_ids))
        dead = await read_topic(isolated.kafka.bootstrap_servers, dead_letter, lambda rs: len(rs) >= len(bad))
        final = await sizes(isolated, [case_events, dead_letter])
    finally:
        await service.terminate()
    log = (tmp_path / "intake.log").read_text(errors="replace")[-3000:]
    assert at_kill[case_events] < len(good_ids) * first_half // total, f"not killed mid-stream: {at_kill}\n{log}"
    ids = Counter(json.loads(r.value)["id"] for r in events)
    assert set(ids) == good_ids and max(ids.values()) == 1, log
    originals = Counter(original_value(json.loads(r.value)["data"], CIPHER) for r in dead)
    assert set(originals) == bad and max(originals.values()) == 1, log
    assert final == {case_events: len(good_ids), dead_letter: len(bad)}  # nothing more arrived
