"""Intake's Kafka subscribers: a source system's topic in, canonical events out."""

from __future__ import annotations

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from services.intake.service_layer.handlers import Converter, IntakeService, RawInput, canonical_converter
from shared import topics
from shared.consumer import BATCH_SUBSCRIBER, raw_records
from shared.contracts import CaseEvent, ContactsUpdated, IntakeRejected
from shared.messaging.outbox import OutboxRelay
from shared.settings import Settings


def build_router(settings: Settings, service: IntakeService, relay: OutboxRelay,
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
                     description="Rejected input with the original bytes, the source, the reason and the time")
    all_sources = {"canonical": (kafka.topic(topics.INTAKE_CANONICAL), canonical_converter), **(sources or {})}

    for name, (topic, convert) in all_sources.items():
        subscriber = router.subscriber(
            topic, group_id=kafka.group(f"ehc-intake-{name}"), title=f"on_{name}", description=_describe(name),
            **BATCH_SUBSCRIBER
        )

        subscriber(_handler(name, convert, service, relay))
    return router


def _describe(name: str) -> str:
    if name == "canonical":
        return ("One canonical case event per message: JSON, CloudEvents 1.0 structured mode, key = case_id "
                "(docs/contracts/case-event.schema.json). An invalid message goes to the dead-letter topic with "
                "its bytes and the reason.")
    return f"The source system's own messages, converted through the mapping {name!r}."


def _handler(name: str, convert: Converter, service: IntakeService, relay: OutboxRelay):  # type: ignore[no-untyped-def]
    async def on_source_topic(message: KafkaMessage) -> None:
        inputs = [
            RawInput(value=r.value or b"", channel="kafka", input_source=name, key=r.key, topic=r.topic,
                     partition=r.partition, offset=r.offset)
            for r in raw_records(message)
        ]
        await service.accept(inputs, convert)
        await relay.drain()  # durably in Kafka (acks=all) before the offsets are committed

    on_source_topic.__name__ = f"on_{name.replace('-', '_')}"
    return on_source_topic
