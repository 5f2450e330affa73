"""Intake use cases: accept raw input, publish canonical events, dead-letter the rest.

One transaction per batch writes the de-duplication rows and the outgoing messages (outbox);
the caller then waits for the outbox to be relayed (acks=all) before it commits the Kafka
offset or answers the HTTP request, so an accepted input is durably in Kafka and a rejected
one is durably in the dead-letter topic.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.domain.results import Rejection
from shared import topics
from shared.contracts import (
    CaseEventEnvelope,
    ContactsUpdated,
    IntakeRejected,
    RejectedData,
    describe_validation_error,
    parse_case_event,
    parse_contacts,
)
from shared.logging import get_logger
from shared.messaging.outbox import add_to_outbox
from shared.settings import KafkaSettings

log = get_logger(__name__)

Channel = Literal["kafka", "webhook", "file"]
Converted = CaseEventEnvelope | ContactsUpdated | Rejection
Converter = Callable[["RawInput"], Sequence[Converted]]


@dataclass(frozen=True, slots=True)
class RawInput:
    value: bytes
    channel: Channel
    input_source: str
    key: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    location: str | None = None


@dataclass
class IntakeOutcome:
    published: int = 0
    duplicates: int = 0
    rejected: int = 0
    contacts: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    event_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: IntakeOutcome) -> None:
        self.published += other.published
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.contacts += other.contacts
        self.reasons.update(other.reasons)
        self.event_ids.extend(other.event_ids)
        self.errors.extend(other.errors)


def canonical_converter(raw: RawInput) -> Sequence[Converted]:
    """For sources that already publish canonical CloudEvents (one event per message)."""
    try:
        if b'"ehc.contacts.updated"' in raw.value:
            return [parse_contacts(raw.value)]
        return [parse_case_event(raw.value)]
    except ValidationError as exc:
        return [Rejection(reason=describe_validation_error(exc), original=raw.value, location=raw.location)]
    except ValueError as exc:  # e.g. undecodable bytes
        return [Rejection(reason=f"unreadable input: {type(exc).__name__}", original=raw.value,
                          location=raw.location)]


class IntakeService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], kafka: KafkaSettings) -> None:
        self._sessions = sessions
        self._kafka = kafka

    async def accept(self, inputs: Iterable[RawInput], convert: Converter = canonical_converter) -> IntakeOutcome:
        """Convert, de-duplicate and stage every input in one transaction (never raises on bad input)."""
        outcome = IntakeOutcome()
        async with self._sessions() as session, session.begin():
            for raw in inputs:
                for item in convert(raw):
                    await self._stage(session, raw, item, outcome)
        return outcome

    async def _stage(self, session: AsyncSession, raw: RawInput, item: Converted, outcome: IntakeOutcome) -> None:
        if isinstance(item, Rejection):
            await self._dead_letter(session, raw, item)
            outcome.rejected += 1
            outcome.reasons[item.reason.split(":")[0]] += 1
            outcome.errors.append(item.reason)
            return
        if isinstance(item, ContactsUpdated):
            # Personal data: its own compacted topic, never a case event.
            await add_to_outbox(session, tables.outbox, self._kafka.topic(topics.CONTACTS), item)
            outcome.contacts += 1
            return
        if not await self._first_time(session, item, raw.channel):
            outcome.duplicates += 1
            return
        await add_to_outbox(session, tables.outbox, self._kafka.topic(topics.CASE_EVENTS), item)
        outcome.published += 1
        outcome.event_ids.append(item.id)

    async def _first_time(self, session: AsyncSession, event: CaseEventEnvelope, channel: str) -> bool:
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        result = await session.execute(
            insert(tables.received_events)
            .values(source=event.source, event_id=event.id, event_type=event.type, channel=channel)
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _dead_letter(self, session: AsyncSession, raw: RawInput, rejection: Rejection) -> None:
        now = datetime.now(UTC)
        digest = hashlib.sha256(rejection.original).hexdigest()
        letter = IntakeRejected(
            id=f"dl-{digest[:32]}-{raw.partition if raw.partition is not None else 'x'}-"
            f"{raw.offset if raw.offset is not None else int(now.timestamp() * 1e6)}",
            source=f"ehc/intake/{raw.channel}",
            subject="rejected",
            time=now,
            data=RejectedData(
                channel=raw.channel,
                input_source=raw.input_source,
                reason=rejection.reason,
                received_at=now,
                original_base64=base64.b64encode(rejection.original).decode(),
                original_topic=raw.topic,
                original_partition=raw.partition,
                original_offset=raw.offset,
                original_key_sha256=hashlib.sha256(raw.key).hexdigest() if raw.key else None,
                location=rejection.location or raw.location,
            ),
        )
        await add_to_outbox(session, tables.outbox, self._kafka.topic(topics.INTAKE_DEAD_LETTER), letter)
        # The reason names fields, never values: safe to log.
        log.info("intake.rejected", channel=raw.channel, input_source=raw.input_source, reason=rejection.reason,
                 partition=raw.partition, offset=raw.offset)
