"""Intake use cases: accept raw input, publish canonical events, dead-letter the rest.

One transaction per batch writes the de-duplication rows and the outgoing messages (outbox);
the caller then waits for the outbox to be relayed (acks=all) before it commits the Kafka
offset or answers the HTTP request, so an accepted input is durably in Kafka and a rejected
one is durably in the dead-letter topic.

De-duplication is by (source, event id) in intake's own ``received_events`` table, for case
events, contact updates and dead letters alike: a redelivered Kafka batch or a re-imported file
publishes nothing twice. A webhook's events are keyed on the authenticated webhook source as well
(``webhook:<name>``, ``<event source>#<id>``), so no sender can suppress another's events. An event
whose ``source`` holds a control character (a NUL, which no database stores) is rejected alone.

Dead letters get deterministic ids (from the topic, partition and offset,
or from the file record's bytes and place); a webhook's dead letters get fresh ids, because every
request is answered with its own errors.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.fernet import Fernet
from sqlalchemy import String, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.domain.mapping import SourceMapping
from services.intake.domain.results import Rejection
from shared import topics
from shared.contracts import CaseEventEnvelope, ContactsUpdated, IntakeRejected, RejectedData
from shared.dead_letters import Original, seal
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)

Channel = Literal["kafka", "webhook", "file"]
Converted = CaseEventEnvelope | ContactsUpdated | Rejection
Converter = Callable[["RawInput"], Sequence[Converted]]

# A dead letter must fit in one Kafka message (1 MB by default; base64 inside the encrypted token and
# the token's own base64 add a third each): a longer original (the unread rest of a malformed file, an
# oversized message) is cut, and the reason says so.
MAX_ORIGINAL_BYTES = 384 * 1024
_CLAIM_CHUNK = 1000  # rows per INSERT of the de-duplication table (SQLite)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CLAIM_MAX = 200  # the width of received_events' columns


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
    """What one batch (or a whole import) did."""

    published: int = 0  # new canonical case events
    duplicates: int = 0  # case events already received (same source and event id)
    rejected: int = 0  # inputs that could not be converted (each one is in the dead-letter topic)
    rejected_before: int = 0  # of those, dead letters already published by an earlier delivery or import
    contacts: int = 0  # new contact updates, to ehc.contacts
    contacts_duplicates: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    event_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: IntakeOutcome, *, keep_ids: bool = True) -> None:
        self.published += other.published
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.rejected_before += other.rejected_before
        self.contacts += other.contacts
        self.contacts_duplicates += other.contacts_duplicates
        self.reasons.update(other.reasons)
        if keep_ids:
            self.event_ids.extend(other.event_ids)
            self.errors.extend(other.errors)


def mapping_converter(mapping: SourceMapping, case_id_key: bytes) -> Converter:
    """A converter reading each input as one message of ``mapping`` (mapped or canonical)."""

    def convert(raw: RawInput) -> Sequence[Converted]:
        items = mapping.convert(raw.value, key=raw.key, case_id_key=case_id_key)
        if raw.location is None:
            return items
        return [_located(item, raw.location) if isinstance(item, Rejection) else item for item in items]

    convert.__name__ = f"convert_{mapping.name.replace('-', '_').replace('.', '_')}"
    return convert


def _located(rejection: Rejection, where: str) -> Rejection:
    location = where if rejection.location is None else f"{where} / {rejection.location}"
    return replace(rejection, location=location)


# Sources that already publish canonical CloudEvents: the type is parsed (never searched for in the
# bytes), contact updates go to ehc.contacts, dates must be plausible and subjects opaque.
CANONICAL = SourceMapping(name="canonical", source="canonical", mode="canonical",
                          description="Canonical case events and contact updates, validated and passed through.")
canonical_converter: Converter = mapping_converter(CANONICAL, case_id_key=b"")


@dataclass(slots=True)
class _Planned:
    kind: Literal["event", "contacts", "rejected"]
    topic: str
    key: bytes
    value: bytes
    claim: tuple[str, str] | None  # (source, id) in received_events; None: always new
    event_type: str
    channel: str
    event_id: str
    reason: str = ""
    location: str | None = None


class IntakeService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], kafka: KafkaSettings, cipher: Fernet) -> None:
        """``cipher`` encrypts the originals of dead letters (shared.dead_letters.dead_letter_cipher)."""
        self._sessions = sessions
        self._kafka = kafka
        self._cipher = cipher

    async def accept(self, inputs: Iterable[RawInput], convert: Converter = canonical_converter) -> IntakeOutcome:
        """Convert, de-duplicate and stage every input in one transaction (never raises on bad input)."""
        return await self.stage([(raw, item) for raw in inputs for item in convert(raw)])

    async def stage(self, items: Sequence[tuple[RawInput, Converted]]) -> IntakeOutcome:
        """Stage already converted items (each with the input it came from) in one transaction:
        new ones into the outbox, in order; repeats of earlier ones are counted and skipped."""
        now = datetime.now(UTC)
        planned = [self._plan(raw, item, now, index) for index, (raw, item) in enumerate(items)]
        outcome = IntakeOutcome()
        if not planned:
            return outcome
        async with self._sessions() as session, session.begin():
            fresh = await _claim(session, planned)
            rows: list[dict[str, Any]] = []
            for plan in planned:
                new = plan.claim is None or plan.claim in fresh
                if new and plan.claim is not None:
                    fresh.discard(plan.claim)  # the same id twice in one batch: the first one wins
                _count(outcome, plan, new)
                if new:
                    rows.append({"topic": plan.topic, "key": plan.key, "value": plan.value})
            if rows:
                await session.execute(insert(tables.outbox), rows)
        return outcome

    def _plan(self, raw: RawInput, item: Converted, now: datetime, index: int) -> _Planned:
        if not isinstance(item, Rejection) and _CONTROL.search(item.source):
            item = Rejection("source: contains a control character (such as NUL)", raw.value or item.to_json(),
                             raw.location)
        if isinstance(item, Rejection):
            letter = _dead_letter(raw, item, now, index, self._cipher)
            claim = None if raw.channel == "webhook" else (letter.source, letter.id)
            if raw.channel != "file":  # the reason names fields, never values: safe to log
                log.info("intake.rejected", channel=raw.channel, input_source=raw.input_source, reason=item.reason,
                         partition=raw.partition, offset=raw.offset)
            return _Planned("rejected", self._kafka.topic(topics.INTAKE_DEAD_LETTER), letter.key(), letter.to_json(),
                            claim, letter.type, raw.channel, letter.id, item.reason, letter.data.location)
        if isinstance(item, ContactsUpdated):
            # Personal data: its own compacted topic, never a case event.
            return _Planned("contacts", self._kafka.topic(topics.CONTACTS), item.key(), item.to_json(),
                            _claim_of(raw, item.source, item.id), item.type, raw.channel, item.id)
        return _Planned("event", self._kafka.topic(topics.CASE_EVENTS), item.key(), item.to_json(),
                        _claim_of(raw, item.source, item.id), item.type,  # type: ignore[attr-defined]
                        raw.channel, item.id)


def _claim_of(raw: RawInput, source: str, event_id: str) -> tuple[str, str]:
    """The de-duplication key: (source, id); a webhook's is keyed on the authenticated sender too."""
    if raw.channel != "webhook":
        return source, event_id
    return _bounded(f"webhook:{raw.input_source}"), _bounded(f"{source}#{event_id}")


def _bounded(text: str) -> str:
    if len(text) <= _CLAIM_MAX:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _count(outcome: IntakeOutcome, plan: _Planned, new: bool) -> None:
    if plan.kind == "event":
        if new:
            outcome.published += 1
            outcome.event_ids.append(plan.event_id)
        else:
            outcome.duplicates += 1
    elif plan.kind == "contacts":
        if new:
            outcome.contacts += 1
        else:
            outcome.contacts_duplicates += 1
    else:
        outcome.rejected += 1
        outcome.rejected_before += 0 if new else 1
        outcome.reasons[plan.reason] += 1
        outcome.errors.append(f"{plan.location}: {plan.reason}" if plan.location else plan.reason)


def _pg_claim_statement() -> Any:
    """PostgreSQL: one statement for the whole batch (four arrays, unnested), compiled once."""
    table = tables.received_events
    names = ("source", "event_id", "event_type", "channel")
    rows = func.unnest(*(bindparam(name, type_=ARRAY(String)) for name in names)).table_valued(*names).render_derived()
    return (pg_insert(table).from_select(list(names), select(*(rows.c[name] for name in names)))
            .on_conflict_do_nothing().returning(table.c.source, table.c.event_id))


_PG_CLAIM = _pg_claim_statement()


async def _claim(session: AsyncSession, planned: Sequence[_Planned]) -> set[tuple[str, str]]:
    """Insert the (source, id) of every planned message that has one; the ones inserted now are new."""
    claims = [p for p in planned if p.claim is not None]
    if not claims:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(_PG_CLAIM, {
            "source": [p.claim[0] for p in claims], "event_id": [p.claim[1] for p in claims],  # type: ignore[index]
            "event_type": [p.event_type for p in claims], "channel": [p.channel for p in claims]})
        return {(row.source, row.event_id) for row in result}
    table = tables.received_events
    fresh: set[tuple[str, str]] = set()
    rows = [{"source": p.claim[0], "event_id": p.claim[1], "event_type": p.event_type,  # type: ignore[index]
             "channel": p.channel} for p in claims]
    for start in range(0, len(rows), _CLAIM_CHUNK):
        statement = (sqlite_insert(table).values(rows[start:start + _CLAIM_CHUNK]).on_conflict_do_nothing()
                     .returning(table.c.source, table.c.event_id))
        fresh.update((row.source, row.event_id) for row in await session.execute(statement))
    return fresh


def _dead_letter(raw: RawInput, rejection: Rejection, now: datetime, index: int, cipher: Fernet) -> IntakeRejected:
    original = rejection.original
    reason = rejection.reason
    if len(original) > MAX_ORIGINAL_BYTES:
        reason = f"{reason}; original cut to its first {MAX_ORIGINAL_BYTES} of {len(original)} bytes"
        original = original[:MAX_ORIGINAL_BYTES]
    location = rejection.location or raw.location
    return IntakeRejected(
        id=_dead_letter_id(raw, rejection, location, index),
        source=f"ehc/intake/{raw.channel}",
        subject="rejected",
        time=now,
        data=RejectedData(
            channel=raw.channel,
            input_source=raw.input_source,
            reason=reason,
            received_at=now,
            original_encrypted=seal(cipher, Original(raw.topic or "", raw.partition or 0, raw.offset or 0, raw.key,
                                                     original)),
            original_topic=raw.topic,
            original_partition=raw.partition,
            original_offset=raw.offset,
            original_key_sha256=hashlib.sha256(raw.key).hexdigest() if raw.key else None,
            location=location,
        ),
    )


def _dead_letter_id(raw: RawInput, rejection: Rejection, location: str | None, index: int) -> str:
    """Deterministic for Kafka (the same record redelivered) and files (the same record re-imported)."""
    if raw.channel == "webhook":
        return f"dl-{uuid.uuid4().hex}"
    digest = hashlib.sha256(rejection.original).hexdigest()
    if raw.channel == "kafka":
        parts: list[object] = [raw.input_source, raw.topic, raw.partition, raw.offset, location, rejection.reason,
                               digest]
        if raw.offset is None:  # not a real Kafka record: nothing makes it unique but the batch position
            parts.append(index)
    else:  # files: the same record at the same place, whatever the file is called
        parts = [location, rejection.reason, digest]
    name = "\x1f".join(str(part) for part in parts)
    return f"dl-{raw.channel}-" + hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()[:40]
