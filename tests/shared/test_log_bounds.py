"""Logging does bounded work whatever it is given (issue 13): the scrubber is linear, every field is
capped, and a Kafka outage is said once when it starts and once when it ends (issue 9)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from shared.logging import MAX_FIELD_CHARS, configure_logging, get_logger, kafka_connection_state, scrub


def test_scrubbing_a_long_word_run_is_linear() -> None:
    # 32,000 characters took 8.8 s with the old email pattern (quadratic in the run's length)
    for text in ("a" * 200_000, "a." * 100_000, "a@" + "b" * 200_000, "+" * 200_000, "x@y" * 60_000):
        started = time.perf_counter()
        scrub(text)
        assert time.perf_counter() - started < 1.0, text[:10]


@pytest.mark.parametrize(("text", "expected"), [
    ("write to jo.parent+x@example.org now", "write to [email] now"),
    ("call 07700 900123 or +44 7700 900123", "call [phone] or [phone]"),
    ("x" * 100 + "jo@mail.example.org", "x" * 38 + "[email]"),
])
def test_emails_and_phones_are_still_masked(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]):
    """What the logs write to stderr (JSON lines), as the services configure them."""
    configure_logging("INFO", json_output=True)
    capsys.readouterr()
    yield lambda: capsys.readouterr().err
    kafka_connection_state.reset()


def test_every_field_is_capped_with_a_marker(stderr) -> None:
    started = time.perf_counter()
    get_logger("t").warning("notifier.receipt_for_unknown_notification", provider_reference="7" * 900_000)
    logging.getLogger("somelib").warning("unknown id %s", "8" * 900_000)
    assert time.perf_counter() - started < 2.0
    first, second = (json.loads(line) for line in stderr().splitlines())
    assert len(first["provider_reference"]) <= MAX_FIELD_CHARS + 40
    assert first["provider_reference"].startswith("7" * 100) and "[cut: 900000 characters]" in first[
        "provider_reference"]
    assert len(second["event"]) <= MAX_FIELD_CHARS + 40 and "[cut:" in second["event"]


def test_a_kafka_outage_is_logged_once_when_it_starts_and_once_when_it_ends(stderr, monkeypatch) -> None:
    monkeypatch.setattr(kafka_connection_state, "settle_seconds", 0.0)
    client = logging.getLogger("aiokafka.client")
    for _ in range(1000):
        client.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connect call failed")
        logging.getLogger("aiokafka.consumer.group_coordinator").error("Group Coordinator Request failed: x")
    kafka_connection_state.mark_up()  # e.g. the outbox relay's messages acknowledged
    kafka_connection_state.mark_up()
    client.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connect call failed")
    client.warning("Unable to request metadata from node with id %s", 1)
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    coordinator.info("Discovered coordinator %s for group %s", 1, "g")  # a consumer back in its group
    coordinator.info("Joined group %s", "g")
    coordinator.warning("Heartbeat failed for group %s because it is rebalancing", "g")  # not an outage
    lines = [json.loads(line) for line in stderr().splitlines()]
    assert [line["event"] for line in lines] == ["kafka.unreachable", "kafka.reachable", "kafka.unreachable",
                                                 "kafka.reachable", "Heartbeat failed for group g because it is "
                                                 "rebalancing"]
    assert lines[1]["suppressed"] == 1999 and lines[3]["suppressed"] == 1
    assert "Unable connect" in lines[0]["detail"]


def test_reconnecting_right_after_an_outage_is_not_a_new_one_and_a_long_one_is_recalled(stderr, monkeypatch) -> None:
    import shared.logging

    now = [1000.0]
    monkeypatch.setattr(shared.logging.time, "monotonic", lambda: now[0])
    client = logging.getLogger("aiokafka.client")
    client.error("Unable connect to node with id 1")
    now[0] += 60
    kafka_connection_state.mark_up()
    for _ in range(5):  # the clients reconnecting: errors within the settling time, then back
        now[0] += 1
        client.error("Marking the coordinator dead (node 1) for group g.")
        kafka_connection_state.mark_up()
    assert [json.loads(line)["event"] for line in stderr().splitlines()] == ["kafka.unreachable", "kafka.reachable"]
    client.error("Unable connect to node with id 1")  # down again within the settling time: not said yet
    now[0] += 20
    client.error("Unable connect to node with id 1")  # still down after it: said
    for _ in range(100):
        now[0] += 1
        client.error("Unable connect to node with id 1")
    now[0] += 300
    client.error("Unable connect to node with id 1")  # a long outage is recalled every 5 minutes
    lines = [json.loads(line) for line in stderr().splitlines()]
    assert [line["event"] for line in lines] == ["kafka.unreachable", "kafka.unreachable"]
    assert lines[1]["suppressed"] == 100 and lines[1]["still_down_seconds"] == 420
