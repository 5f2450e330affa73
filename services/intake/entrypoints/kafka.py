"""Intake's Kafka subscribers: a source system's topic in, canonical events out.

Each record is checked against the limits (size, JSON depth) before its mapping reads it, and the
records are handled in batches; a record that cannot be read or handled is parked, encrypted, on
``ehc.intake.dead-letter`` and its case (the record's key) held (shared.consumer). Input the
mapping rejects is dead-lettered with its reason as before (``ehc.intake.rejected``)."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from prometheus_client import Counter

from services.intake.service_layer.handlers import (
    Converter,
    IntakeOutcome,
    IntakeService,
    RawInput,
    canonical_converter,
)
from shared import topics
from shared.consumer import Isolated, batch_subscriber, check_json, isolated_batch
from shared.contracts import CaseEvent, ContactsUpdated, IntakeRejected
from shared.dead_letters import DeadLetters
from shared.messaging.outbox import OutboxRelay
from shared.settings import Settings

INPUTS = Counter("ehc_intake_inputs_total", "Inputs read by intake, by what became of them", ["source", "outcome"])


def count_outcome(source: str, outcome: IntakeOutcome) -> None:
    for name, n in (("published", outcome.published), ("duplicate", outcome.duplicates),
                    ("rejected", outcome.rejected - outcome.rejected_before), ("contacts", outcome.contacts),
                    ("contacts_duplicate", outcome.contacts_duplicates)):
        if n:
            INPUTS.labels(source, name).inc(n)


def build_router(settings: Settings, service: IntakeService, relay: OutboxRelay, dead_letters: DeadLetters,
                 sources: dict[str, tuple[str, Converter]] | None = None) -> KafkaRouter:
    """``sources``: mapping name -> (topic, converter) for councils' own topics."""
    kafka = settings.kafka
    router = KafkaRouter()
    # Outgoing messages go through the outbox; these declarations document them in AsyncAPI.
    router.publisher(kafka.topic(topics.CASE_EVENTS), schema=CaseEvent, title="to_case_events",
                     description="Canonical case events, key = case_id (docs/contracts/case-event.schema.json)")
    router.publisher(kafka.topic(topics.CONTACTS), schema=ContactsUpdated, title="to_contacts",
                     description="Contact details (personal data), compacted, key = case_id")
    router.publisher(kafka.topic(topics.INTAKE_DEAD_LETTER), schema=IntakeRejected, title="to_dead_letter",
                     description="Rejected input with the original bytes, the source, the reason and the time; "
                     "records that could not be handled (ehc.record.parked, originals encrypted)")
    all_sources = {"canonical": (kafka.topic(topics.INTAKE_CANONICAL), canonical_converter), **(sources or {})}

    for name, (topic, convert) in all_sources.items():
        consumer = _consumer(name, convert, service, relay, dead_letters, settings)
        router.subscriber(topic, group_id=kafka.group(f"ehc-intake-{name}"), title=f"on_{name}",
                          description=_describe(name),
                          **batch_subscriber(consumer))(isolated_batch(consumer))
    return router


def _consumer(name: str, convert: Converter, service: IntakeService, relay: OutboxRelay, dead_letters: DeadLetters,
              settings: Settings) -> Isolated[RawInput]:
    limits = settings.dead_letters

    def decode(r: ConsumerRecord[bytes, bytes]) -> RawInput:
        check_json(r.value or b"", limits)
        return RawInput(value=r.value or b"", channel="kafka", input_source=name, key=r.key, topic=r.topic,
                        partition=r.partition, offset=r.offset)

    async def handle(items: Sequence[tuple[ConsumerRecord[bytes, bytes], RawInput]]) -> None:
        outcome = await service.accept([raw for _, raw in items], convert)
        await relay.drain()  # durably in Kafka (acks=all) before the offsets are committed
        count_outcome(name, outcome)

    return Isolated(f"intake-{name}", dead_letters, decode, handle, limits)


def _describe(name: str) -> str:
    if name == "canonical":
        return ("One canonical case event per message: JSON, CloudEvents 1.0 structured mode, key = case_id "
                "(docs/contracts/case-event.schema.json). A message that cannot be handled is parked on the "
                "dead-letter topic (original encrypted) with the reason.")
    return f"The source system's own messages, converted through the mapping {name!r}."
