"""The notifier's Kafka subscribers: deadline events, case assignments and contacts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from services.notifier.service_layer.handlers import NotifierService
from shared import topics
from shared.consumer import BATCH_SUBSCRIBER, raw_records
from shared.contracts import (
    CASE_EVENT_TYPES,
    ContactsUpdated,
    NotificationEvent,
    describe_validation_error,
    parse_case_event,
    parse_contacts,
)
from shared.contracts.deadline_events import parse_deadline_event
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)


def build_router(kafka: KafkaSettings, service: NotifierService,
                 after_batch: Callable[[], Awaitable[None]]) -> KafkaRouter:
    router = KafkaRouter()
    # Audit events go through the outbox; this declaration documents them in AsyncAPI.
    router.publisher(kafka.topic(topics.NOTIFICATION_EVENTS), schema=NotificationEvent, title="to_notification_events",
                     description="Every notification attempt and status change, for audit, key = case_id")

    @router.subscriber(kafka.topic(topics.DEADLINE_EVENTS), group_id=kafka.group("ehc-notifier"), **BATCH_SUBSCRIBER)
    async def on_deadline_events(message: KafkaMessage) -> None:
        events = []
        for record in raw_records(message):
            try:
                events.append(parse_deadline_event(record.value or b""))
            except ValidationError as exc:
                log.error("notifier.invalid_deadline_event", partition=record.partition, offset=record.offset,
                          reason=describe_validation_error(exc))
        await service.handle_deadline_events(events)
        await after_batch()

    @router.subscriber(kafka.topic(topics.CASE_EVENTS), group_id=kafka.group("ehc-notifier-routing"),
                       **BATCH_SUBSCRIBER)
    async def on_case_events(message: KafkaMessage) -> None:
        events = []
        for record in raw_records(message):
            if b'"ehc.case.assigned"' not in (record.value or b""):
                continue  # only assignments matter here; skip parsing the rest
            try:
                event = parse_case_event(record.value or b"")
            except ValidationError as exc:
                log.error("notifier.invalid_case_event", partition=record.partition, offset=record.offset,
                          reason=describe_validation_error(exc))
                continue
            if event.type in CASE_EVENT_TYPES:  # type: ignore[attr-defined]
                events.append(event)
        await service.handle_case_events(events)
        await after_batch()

    @router.subscriber(kafka.topic(topics.CONTACTS), group_id=kafka.group("ehc-notifier-contacts"),
                       **BATCH_SUBSCRIBER)
    async def on_contacts(message: KafkaMessage) -> None:
        items: list[tuple[str, ContactsUpdated | None]] = []
        for record in raw_records(message):
            case_id = (record.key or b"").decode(errors="replace")
            if record.value is None:  # tombstone: erase
                items.append((case_id, None))
                continue
            try:
                update = parse_contacts(record.value)
            except ValidationError as exc:
                log.error("notifier.invalid_contacts", partition=record.partition, offset=record.offset,
                          reason=describe_validation_error(exc))
                continue
            items.append((update.subject, update))
        await service.handle_contacts(items)

    return router
