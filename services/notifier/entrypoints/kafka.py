"""The notifier's Kafka subscribers: deadline events, case assignments and contacts.

Each record is decoded here (with limits) and handled in batches; a record that cannot be decoded
or handled is parked on ``ehc.notifier.dead-letter`` (encrypted: contacts are personal data) and
its case held (shared.consumer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from prometheus_client import Counter

from services.notifier.service_layer.handlers import NotifierService
from shared import topics
from shared.consumer import Isolated, batch_subscriber, check_json, isolated_batch
from shared.contracts import (
    CASE_EVENT_TYPES,
    CaseDataQualityEvent,
    CaseEventEnvelope,
    ContactsUpdated,
    DeadlineEvent,
    NotificationEvent,
    RecordParked,
    parse_case_event,
    parse_contacts,
)
from shared.contracts.deadline_events import parse_deadline_topic_event
from shared.dead_letters import DeadLetters
from shared.settings import DeadLetterSettings, KafkaSettings

PLANNED = Counter("ehc_notifier_notifications_planned_total", "Notifications planned from deadline events")
Records = Sequence[tuple[ConsumerRecord[bytes, bytes], Any]]


def build_router(kafka: KafkaSettings, service: NotifierService, after_batch: Callable[[], Awaitable[None]],
                 dead_letters: DeadLetters, limits: DeadLetterSettings) -> KafkaRouter:
    router = KafkaRouter()
    # Audit events go through the outbox; this declaration documents them in AsyncAPI.
    router.publisher(kafka.topic(topics.NOTIFICATION_EVENTS), schema=NotificationEvent, title="to_notification_events",
                     description="Every notification attempt and status change, for audit, key = case_id")
    router.publisher(kafka.topic(topics.NOTIFIER_DEAD_LETTER), schema=RecordParked, title="to_dead_letter",
                     description="Records that could not be decoded or handled (originals encrypted)")

    def subscribe(topic: str, group: str, consumer: Isolated[Any]) -> None:
        router.subscriber(kafka.topic(topic), group_id=kafka.group(group), title=f"on_{consumer.name}",
                          **batch_subscriber(consumer))(isolated_batch(consumer))

    def decode_deadline_event(record: ConsumerRecord[bytes, bytes]) -> DeadlineEvent | CaseDataQualityEvent:
        check_json(record.value or b"", limits)
        return parse_deadline_topic_event(record.value or b"")

    async def handle_deadline_events(items: Records) -> None:
        events = [event for _, event in items]
        await service.handle_data_quality_events([e for e in events if isinstance(e, CaseDataQualityEvent)])
        PLANNED.inc(await service.handle_deadline_events([e for e in events if isinstance(e, DeadlineEvent)]))
        await after_batch()

    def decode_assignment(record: ConsumerRecord[bytes, bytes]) -> CaseEventEnvelope | None:
        value = record.value or b""
        if b'"ehc.case.assigned"' not in value:
            return None  # only assignments matter here; skip parsing the rest
        check_json(value, limits)
        event = parse_case_event(value)
        return event if event.type in CASE_EVENT_TYPES else None  # type: ignore[attr-defined]

    async def handle_assignments(items: Records) -> None:
        events = [event for _, event in items if event is not None]
        if events:
            await service.handle_case_events(events)
            await after_batch()

    def decode_contacts(record: ConsumerRecord[bytes, bytes]) -> tuple[str, ContactsUpdated | None]:
        if record.value is None:  # tombstone: erase
            return (record.key or b"").decode(errors="replace"), None
        check_json(record.value, limits)
        update = parse_contacts(record.value)
        return update.subject, update

    async def handle_contacts(items: Records) -> None:
        await service.handle_contacts([item for _, item in items])

    subscribe(topics.DEADLINE_EVENTS, "ehc-notifier",
              Isolated("notifier", dead_letters, decode_deadline_event, handle_deadline_events, limits))
    subscribe(topics.CASE_EVENTS, "ehc-notifier-routing",
              Isolated("notifier-routing", dead_letters, decode_assignment, handle_assignments, limits))
    subscribe(topics.CONTACTS, "ehc-notifier-contacts",
              Isolated("notifier-contacts", dead_letters, decode_contacts, handle_contacts, limits))
    return router
