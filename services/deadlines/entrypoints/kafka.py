"""The deadlines service's Kafka subscriber: ``ehc.case-events`` in, ``ehc.deadline-events`` out.

Each record is decoded here (with limits) and handled in batches; a record that cannot be decoded
or handled is parked on ``ehc.deadlines.dead-letter`` and its case held (shared.consumer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter

from services.deadlines.adapters.records import ConsumedCaseEvent, decode_case_event
from services.deadlines.service_layer.handlers import BatchResult, DeadlinesService
from shared import topics
from shared.consumer import Isolated, batch_subscriber, check_json, isolated_batch
from shared.contracts import CaseDataQualityEvent, CaseEventEnvelope, DeadlineEvent, RecordParked
from shared.dead_letters import DeadLetters
from shared.settings import DeadLetterSettings, KafkaSettings

CONSUMER = "deadlines"
# A backlog is worked through in batches this large: a batch's cost is mostly its dozen round trips
# to the database, whatever its size (at low rates a batch is what arrived within 50 ms).
MAX_BATCH = 2000


def build_router(kafka: KafkaSettings, service: DeadlinesService, after_batch: Callable[[], Awaitable[None]],
                 dead_letters: DeadLetters, limits: DeadLetterSettings,
                 on_batch: Callable[[BatchResult], None] = lambda _r: None) -> KafkaRouter:
    router = KafkaRouter()
    # Outgoing messages go through the outbox; this declaration documents them in AsyncAPI.
    router.publisher(kafka.topic(topics.DEADLINE_EVENTS), schema=DeadlineEvent, title="to_deadline_events",
                     description="deadline.opened/changed/due_soon/breached/met/exception/cancelled, key = case_id")
    router.publisher(kafka.topic(topics.DEADLINE_EVENTS), schema=CaseDataQualityEvent,
                     title="to_deadline_events_quality",
                     description="case.data_quality: a case's data-quality warnings changed (the whole current "
                     "set; empty when all clear), key = case_id")
    router.publisher(kafka.topic(topics.DEADLINES_DEAD_LETTER), schema=RecordParked, title="to_dead_letter",
                     description="Case events that could not be decoded or handled, and those held behind them")

    def decode(record: ConsumerRecord[bytes, bytes]) -> CaseEventEnvelope | ConsumedCaseEvent:
        value = record.value or b""
        check_json(value, limits)
        return decode_case_event(value)  # msgspec, pydantic where it doubts: the same errors

    async def handle(items: Sequence[tuple[ConsumerRecord[bytes, bytes], CaseEventEnvelope | ConsumedCaseEvent]],
                     ) -> None:
        on_batch(await service.handle_case_events([event for _, event in items]))
        await after_batch()

    consumer = Isolated(CONSUMER, dead_letters, decode, handle, limits)
    router.subscriber(kafka.topic(topics.CASE_EVENTS), group_id=kafka.group("ehc-deadlines"), title="on_case_events",
                      description="Canonical case events (docs/contracts/case-event.schema.json), key = case_id",
                      **batch_subscriber(consumer, max_records=MAX_BATCH))(isolated_batch(consumer))
    return router
