"""Dead letters of a service's consumers: park a record, hold its case, list, show and replay.

A record a consumer cannot decode or handle (after bounded retries) is *parked*: a
:class:`~shared.contracts.RecordParked` message on the service's dead-letter topic carries the
original key, value and headers encrypted (Fernet: they may hold personal data), the reason and the
time; a row in the service's ``held_records`` table marks its case (the hashed key) as *held*. Later
records of a held case are parked behind it, in order, never applied out of order.

``replay`` republishes the original bytes to the original topic with the ``ehc-replay-of`` header;
the consumer re-drives a replayed record only when it is its case's earliest held one, and releases
the case once every held record went through (shared.consumer). Dead letters are kept for
``EHC_DEAD_LETTERS__RETENTION_DAYS`` (the topic's retention) and can be replayed within it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet, InvalidToken
from prometheus_client import Counter, Gauge
from pydantic import Field, TypeAdapter
from sqlalchemy import Table, delete, distinct, func, insert, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts import IntakeRejected, ParkedData, RecordParked
from shared.kafka import aiokafka_security, topic_partitions
from shared.logging import get_logger
from shared.settings import Settings
from shared.topics import DEAD_LETTER_TOPICS

log = get_logger(__name__)

REPLAY_HEADER = "ehc-replay-of"
PARKED = Counter("ehc_dead_letters_parked_total", "Records parked on a dead-letter topic",
                 ["service", "consumer", "why"])
RELEASED = Counter("ehc_dead_letters_released_total", "Held records re-driven by a replay", ["service", "consumer"])
HELD_CASES = Gauge("ehc_held_cases", "Cases held behind a parked record (later records wait)", ["service"])
# Only for a machine without a key that is not production (local runs, tests): never a secret.
_DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"ehc-dead-letters-development-only").digest())


_LETTER: TypeAdapter[RecordParked | IntakeRejected] = TypeAdapter(
    Annotated[RecordParked | IntakeRejected, Field(discriminator="type")])


class DeadLetterError(RuntimeError):
    """A dead letter cannot be found, decrypted or replayed."""


def dead_letter_cipher(settings: Settings) -> Fernet:
    key = settings.dead_letters.encryption_key
    if key is not None:
        return Fernet(key.get_secret_value().encode())
    if settings.environment == "production":
        raise RuntimeError("EHC_DEAD_LETTERS__ENCRYPTION_KEY is required in production (a Fernet key)")
    return Fernet(_DEV_KEY)


def key_hash(key: bytes | None) -> str | None:
    return hashlib.sha256(key).hexdigest() if key else None


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


def _unb64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


@dataclass(frozen=True)
class Original:
    """The record as it was consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def seal(cipher: Fernet, original: Original) -> str:
    """The original record (key, value, headers) encrypted, as text."""
    return cipher.encrypt(json.dumps({
        "key": _b64(original.key), "value": _b64(original.value),
        "headers": [[name, _b64(value)] for name, value in original.headers]}).encode()).decode()


def unseal(cipher: Fernet, token: str, letter_id: str, place: tuple[str, int, int]) -> Original:
    try:
        raw = json.loads(cipher.decrypt(token.encode()))
    except InvalidToken:
        raise DeadLetterError(f"{letter_id}: cannot decrypt (EHC_DEAD_LETTERS__ENCRYPTION_KEY differs)") from None
    return Original(*place, _unb64(raw["key"]), _unb64(raw["value"]),
                    tuple((name, _unb64(value) or b"") for name, value in raw["headers"]))


@dataclass(frozen=True)
class Letter:
    """A dead letter as an operator sees it: a parked record, or (intake) rejected input."""

    id: str
    kind: str  # parked | rejected
    consumer: str
    reason: str
    at: datetime
    attempts: int
    held_behind: str | None
    case_key_sha256: str | None
    topic: str | None
    partition: int | None
    offset: int | None
    size: int | None
    sealed: str | None  # the encrypted original
    legacy_base64: str | None = None  # a rejected original from before encryption
    pending: bool = False  # still held (not yet re-driven)

    @classmethod
    def of(cls, envelope: RecordParked | IntakeRejected, pending: bool = False) -> Letter:
        d = envelope.data
        if isinstance(d, ParkedData):
            return cls(envelope.id, "parked", d.consumer, d.reason, d.parked_at, d.attempts, d.held_behind,
                       d.case_key_sha256, d.original_topic, d.original_partition, d.original_offset,
                       d.original_size, d.original_encrypted, pending=pending)
        return cls(envelope.id, "rejected", f"intake-{d.input_source}", d.reason, d.received_at, 0, None,
                   d.original_key_sha256, d.original_topic, d.original_partition, d.original_offset, None,
                   d.original_encrypted, d.original_base64, pending)


class DeadLetters:
    """One service's dead letters: its topic, its ``held_records`` table and its key."""

    def __init__(self, service: str, settings: Settings, sessions: async_sessionmaker[AsyncSession],
                 held: Table, producer: Any) -> None:
        self.service = service
        self.settings = settings
        self.topic = settings.kafka.topic(DEAD_LETTER_TOPICS[service])
        self._sessions = sessions
        self._held = held
        self._producer = producer
        self._cipher = dead_letter_cipher(settings)
        self._held_cache: dict[str, tuple[tuple[Any, ...], dict[str | None, list[str]]]] = {}

    # --- the consumer's side --------------------------------------------------------------------

    async def held(self, consumer: str, case_keys: Iterable[str]) -> dict[str, list[str]]:
        """Held cases among ``case_keys``: case key hash -> its pending dead-letter ids, oldest first.

        Asked before every batch, and almost never changed: the consumer's held records are kept in
        memory and read again only when their fingerprint (one small aggregate, without a
        transaction) shows a change, by this process or by another replica (a case's partition moves
        to whichever replica the group gives it)."""
        keys = set(case_keys)
        if not keys:
            return {}
        t = self._held
        mine = t.c.consumer == consumer
        async with self._sessions() as session:
            conn = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            if conn.dialect.name == "postgresql":
                ids = func.string_agg(t.c.dead_letter_id, aggregate_order_by(literal_column("','"), t.c.seq))
                check = select(func.count(), func.md5(ids)).where(mine)
            else:
                ordered = select(t.c.dead_letter_id).where(mine).order_by(t.c.seq).subquery()
                check = select(func.count(), func.group_concat(ordered.c.dead_letter_id))
            fingerprint = tuple((await conn.execute(check)).one())
            cached = self._held_cache.get(consumer)
            if cached is None or cached[0] != fingerprint:  # read after the fingerprint: a change between
                held: dict[str, list[str]] = {}               # the two is seen at the next check
                for row in await conn.execute(select(t.c.case_key_sha256, t.c.dead_letter_id).where(mine)
                                              .order_by(t.c.seq)):
                    held.setdefault(row.case_key_sha256, []).append(row.dead_letter_id)
                cached = self._held_cache[consumer] = (fingerprint, held)
        return {k: list(v) for k, v in cached[1].items() if k in keys}

    async def park(self, consumer: str, original: Original, reason: str, attempts: int,
                   held_behind: str | None = None) -> str:
        """Publish the dead letter (acks=all), then hold its case. Idempotent for a redelivered record."""
        letter_id = "dl-" + hashlib.sha256(
            f"{consumer}\x1f{original.topic}\x1f{original.partition}\x1f{original.offset}".encode()).hexdigest()[:40]
        case = key_hash(original.key)
        now = datetime.now(UTC)
        sealed = seal(self._cipher, original)
        envelope = RecordParked(
            id=letter_id, source=f"ehc/{self.service}", subject="parked", time=now,
            data=ParkedData(service=self.service, consumer=consumer, reason=reason[:500], parked_at=now,  # type: ignore[arg-type]
                            attempts=attempts, held_behind=held_behind, case_key_sha256=case,
                            original_topic=original.topic, original_partition=original.partition,
                            original_offset=original.offset, original_size=len(original.value or b""),
                            original_encrypted=sealed))
        await self._producer.send_and_wait(self.topic, envelope.to_json(), key=(case or letter_id).encode())
        async with self._sessions() as session, session.begin():
            exists = await session.scalar(select(self._held.c.seq).where(self._held.c.dead_letter_id == letter_id))
            if exists is None:
                await session.execute(insert(self._held).values(
                    consumer=consumer, dead_letter_id=letter_id, case_key_sha256=case, topic=original.topic,
                    partition=original.partition, offset=original.offset, reason=reason[:500]))
        self._held_cache.pop(consumer, None)
        why = "held" if held_behind else "failed"
        PARKED.labels(self.service, consumer, why).inc()
        # An alert for the service's operators: the position and the reason, never the content.
        log.error("dead_letter.parked", service=self.service, consumer=consumer, dead_letter_id=letter_id,
                  topic=original.topic, partition=original.partition, offset=original.offset,
                  reason=reason[:200], attempts=attempts, held_behind=held_behind)
        await self.refresh_gauge()
        return letter_id

    async def release(self, consumer: str, letter_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(self._held).where(self._held.c.dead_letter_id == letter_id))
        self._held_cache.pop(consumer, None)
        RELEASED.labels(self.service, consumer).inc()
        log.warning("dead_letter.released", service=self.service, consumer=consumer, dead_letter_id=letter_id)
        await self.refresh_gauge()

    async def held_case_count(self) -> int:
        async with self._sessions() as session:
            t = self._held
            return int(await session.scalar(select(func.count(distinct(t.c.case_key_sha256)))) or 0)

    async def refresh_gauge(self) -> None:
        HELD_CASES.labels(self.service).set(await self.held_case_count())

    async def pending_ids(self) -> list[str]:
        async with self._sessions() as session:
            return list((await session.scalars(select(self._held.c.dead_letter_id).order_by(self._held.c.seq))).all())

    # --- the operator's side --------------------------------------------------------------------

    async def letters(self, timeout_s: float = 10.0) -> list[Letter]:
        """Every dead letter still on the topic (within retention), oldest first, without repeats."""
        pending = set(await self.pending_ids())
        seen: dict[str, Letter] = {}
        for value in await read_all(self.settings, self.topic, timeout_s):
            try:
                envelope = _LETTER.validate_json(value)
            except ValueError:
                continue  # not a dead letter of this project
            if envelope.id not in seen:
                seen[envelope.id] = Letter.of(envelope, envelope.id in pending)
        return sorted(seen.values(), key=lambda x: x.at)

    def original(self, letter: Letter | RecordParked | IntakeRejected) -> Original:
        if not isinstance(letter, Letter):
            letter = Letter.of(letter)
        place = (letter.topic or "", letter.partition or 0, letter.offset or 0)
        if letter.sealed is None:  # written before originals were encrypted
            return Original(*place, None, base64.b64decode(letter.legacy_base64 or ""))
        return unseal(self._cipher, letter.sealed, letter.id, place)

    async def replay(self, letter_ids: Sequence[str], letters: Sequence[Letter] | None = None) -> list[str]:
        """Republish the originals of ``letter_ids`` and, for a held case, every later held record of
        that case, in order (the consumer releases the case as they go through). Returns the ids sent."""
        letters = list(letters) if letters is not None else await self.letters()
        by_id = {x.id: x for x in letters}
        missing = [i for i in letter_ids if i not in by_id]
        if missing:
            raise DeadLetterError(f"no such dead letter (or past its retention): {', '.join(missing)}")
        not_kafka = [i for i in letter_ids if by_id[i].topic is None]
        if not_kafka:
            raise DeadLetterError(f"not read from a Kafka topic (a file or webhook: send it again there): "
                                  f"{', '.join(not_kafka)}")
        chosen: dict[str, Letter] = {}
        for letter_id in letter_ids:
            first = by_id[letter_id]
            chosen[letter_id] = first
            if first.pending and first.case_key_sha256:
                for other in letters:
                    same_case = other.case_key_sha256 == first.case_key_sha256 and other.consumer == first.consumer
                    if other.pending and same_case:
                        chosen.setdefault(other.id, other)
        ordered = sorted(chosen.values(), key=lambda x: (x.at, x.offset or 0))
        sent = []
        for letter in ordered:
            original = self.original(letter)
            headers = [(n, v) for n, v in original.headers if n != REPLAY_HEADER]
            headers.append((REPLAY_HEADER, letter.id.encode()))
            await self._producer.send_and_wait(original.topic, original.value, key=original.key, headers=headers)
            sent.append(letter.id)
            log.warning("dead_letter.replayed", service=self.service, dead_letter_id=letter.id,
                        topic=original.topic)
        return sent


async def read_all(settings: Settings, topic: str, timeout_s: float = 10.0) -> list[bytes]:
    """Every value on ``topic`` now (from the beginning to the end offsets), without a consumer group."""
    kafka = settings.kafka
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                **aiokafka_security(kafka))
    await consumer.start()
    values: list[bytes] = []
    try:
        tps = await topic_partitions(kafka, topic)
        if not tps:
            return values
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        loop_deadline = datetime.now(UTC).timestamp() + timeout_s
        while remaining and datetime.now(UTC).timestamp() < loop_deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batch.values():
                values.extend(r.value for r in records if r.value is not None)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return values
    finally:
        await consumer.stop()


def original_value(data: dict[str, Any], cipher: Fernet) -> bytes:
    """The original bytes of a dead letter, from its ``data`` as JSON (decrypted; or a legacy base64)."""
    if data.get("original_encrypted"):
        return unseal(cipher, data["original_encrypted"], "dead letter", ("", 0, 0)).value or b""
    return base64.b64decode(data.get("original_base64") or "")
