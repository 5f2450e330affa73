"""The deadlines service's Kafka subscriber: ``ehc.case-events`` in, ``ehc.deadline-events`` out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from services.deadlines.service_layer.handlers import BatchResult, DeadlinesService
from shared import topics
from shared.consumer import BATCH_SUBSCRIBER, raw_records
from shared.contracts import DeadlineEvent, describe_validation_error, parse_case_event
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)


def build_router(kafka: KafkaSettings, service: DeadlinesService, after_batch: Callable[[], Awaitable[None]],
                 on_invalid: Callable[[], None] = lambda: None,
                 on_batch: Callable[[BatchResult], None] = lambda _r: None) -> KafkaRouter:
    router = KafkaRouter()
    # Outgoing messages go through the outbox; this declaration documents them in AsyncAPI.
    router.publisher(kafka.topic(topics.DEADLINE_EVENTS), schema=DeadlineEvent, title="to_deadline_events",
                     description="deadline.opened/changed/due_soon/breached/met/exception/cancelled, key = case_id")

    @router.subscriber(kafka.topic(topics.CASE_EVENTS), group_id=kafka.group("ehc-deadlines"),
                       description="Canonical case events (docs/contracts/case-event.schema.json), key = case_id",
                       **BATCH_SUBSCRIBER)
    async def on_case_events(message: KafkaMessage) -> None:
        events = []
        for record in raw_records(message):
            try:
                events.append(parse_case_event(record.value or b""))
            except ValidationError as exc:
                # Intake validates everything it publishes; anything else on the topic is logged
                # with its position (never its content) and counted, so an operator can look.
                log.error("deadlines.invalid_case_event", partition=record.partition, offset=record.offset,
                          reason=describe_validation_error(exc))
                on_invalid()
        if events:
            on_batch(await service.handle_case_events(events))
        await after_batch()

    return router
