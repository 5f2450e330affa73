"""Transactional outbox: outgoing messages are rows written with the effects, then relayed.

The relay publishes rows in id order with acks=all and marks them published. On PostgreSQL a
transaction-scoped advisory lock makes one replica at a time the relay, which keeps the order
of each case's messages; a crash between publish and mark re-publishes (at-least-once), and
consumers de-duplicate by event id.

Published rows are kept for ``retention`` (a week by default, ``EHC_OUTBOX_RETENTION_DAYS``) and then
deleted by the relay's loop (every ``prune_every_seconds``): an outbox row can hold personal data
(intake's contact updates), which must not outlive its use in plaintext.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from shared.bulk import connection, copy_rows, fetch, qualified_name
from shared.contracts.envelope import Envelope
from shared.logging import get_logger, kafka_connection_state
from shared.waiting import wait_for_wakeup

log = get_logger(__name__)


_WROTE_OUTBOX = "ehc.outbox.written"  # session.info: this transaction added outbox rows


def _event_id(value: bytes) -> str | None:
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed.get("id") if isinstance(parsed, dict) else None


class Producer(Protocol):
    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Sequence[tuple[str, bytes]] | None = None) -> Any: ...


async def add_to_outbox(session: AsyncSession, outbox: Table, topic: str, event: Envelope) -> None:
    await session.execute(
        outbox.insert().values(topic=topic, key=event.key(), value=event.to_json(), headers=None)
    )


class OutboxRelay:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Table, producer: Producer,
                 *, batch_size: int = 500, idle_seconds: float = 0.2, retention: timedelta = timedelta(days=7),
                 prune_every_seconds: float = 600.0) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._producer = producer
        self._batch_size = batch_size
        self.idle_seconds = idle_seconds
        self._wakeup = asyncio.Event()
        self._local = asyncio.Lock()  # one relay pass at a time within a process (SQLite has no advisory lock)
        self.published = 0
        self.retention = retention
        self._prune_every = prune_every_seconds
        self._pruned_at = float("-inf")
        self.pruned = 0

    def _lock_key(self, session: AsyncSession) -> int:
        """The advisory lock of this outbox table: one relay at a time per table (its real schema)."""
        translate = session.bind.get_execution_options().get("schema_translate_map") or {}
        return zlib.crc32(f"outbox:{translate.get(self._outbox.schema, self._outbox.schema)}".encode())

    def wake(self) -> None:
        self._wakeup.set()

    def wake_after_commits(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Wake the relay whenever a transaction of ``sessions`` that wrote to this outbox commits
        (the rows are visible then), so they go out at once, not at the next idle poll, whoever
        wrote them: a consumer's batch, a sender's status change, an HTTP request, a scheduled job.
        The sessions get a class of their own, so only their commits are watched."""
        base = sessions.kw.get("sync_session_class") or Session
        watched: type[Session] = type(f"Outbox{base.__name__}", (base,), {})
        sessions.kw["sync_session_class"] = watched
        outbox = self._outbox

        def written(state: ORMExecuteState) -> None:
            statement = state.statement
            if getattr(statement, "is_insert", False) and getattr(statement, "table", None) is outbox:
                state.session.info[_WROTE_OUTBOX] = True

        def committed(session: Session) -> None:
            if session.info.pop(_WROTE_OUTBOX, False):
                self.wake()

        def rolled_back(session: Session) -> None:  # the transaction's rows are gone
            session.info.pop(_WROTE_OUTBOX, None)

        sa_event.listen(watched, "do_orm_execute", written)
        sa_event.listen(watched, "after_commit", committed)
        sa_event.listen(watched, "after_rollback", rolled_back)

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self._local:
            return await self._publish_batch()

    async def _publish_batch(self) -> int:
        async with self._sessions() as session, session.begin():
            postgres = session.bind.dialect.name == "postgresql"
            if postgres:
                rows = await self._claim_pg(session)
            else:
                rows = [tuple(r) for r in (await session.execute(
                    select(self._outbox.c.id, self._outbox.c.topic, self._outbox.c.key, self._outbox.c.value,
                           self._outbox.c.headers)
                    .where(self._outbox.c.published_at.is_(None)).order_by(self._outbox.c.id).limit(self._batch_size)
                )).all()]
            if not rows:
                return 0
            await _send_all(self._producer, [(topic, key, value, _headers(headers))
                                             for _id, topic, key, value, headers in rows])
            kafka_connection_state.mark_up()
            ids = [r[0] for r in rows]
            if postgres:  # one statement whatever the batch's size, prepared once per connection
                outbox = qualified_name(await connection(session), self._outbox)
                await fetch(session, f"UPDATE {outbox} SET published_at = $1 WHERE id = ANY($2::bigint[])",
                            [datetime.now(UTC), ids])
            else:
                await session.execute(update(self._outbox).where(self._outbox.c.id.in_(ids))
                                      .values(published_at=datetime.now(UTC)))
        self.published += len(rows)
        return len(rows)

    async def _claim_pg(self, session: AsyncSession) -> list[tuple[Any, ...]]:
        """PostgreSQL: the relay's lock (none: another replica relays; no rows), then the oldest
        unpublished rows, on the session's asyncpg connection (the statements prepared once). The
        lock is taken by its own statement: a later statement's snapshot sees every row committed
        by the replica that held it before."""
        outbox = qualified_name(await connection(session), self._outbox)
        if not (await fetch(session, "SELECT pg_try_advisory_xact_lock($1)", [self._lock_key(session)]))[0][0]:
            return []
        rows = await fetch(session, f"SELECT id, topic, key, value, headers::text FROM {outbox} "
                                    f"WHERE published_at IS NULL ORDER BY id LIMIT $1", [self._batch_size])
        return [(i, topic, key, value, None if headers is None or headers == "null" else json.loads(headers))
                for i, topic, key, value, headers in rows]

    async def reconcile(self, recent_ids: Callable[[str, int], Awaitable[set[str]]]) -> int:
        """At start-up, before relaying: mark as published the pending rows whose event is already
        in Kafka (published just before a crash, not yet marked), so nothing is published twice.
        At most one batch can be in that state, so the last ``batch_size`` records of each
        partition of the target topics are enough to look at."""
        async with self._local, self._sessions() as session, session.begin():
            rows = (await session.execute(
                select(self._outbox.c.id, self._outbox.c.topic, self._outbox.c.value)
                .where(self._outbox.c.published_at.is_(None)).order_by(self._outbox.c.id).limit(self._batch_size)
            )).all()
            if not rows:
                return 0
            found: list[int] = []
            for topic in {r.topic for r in rows}:
                already = await recent_ids(topic, self._batch_size)
                found.extend(r.id for r in rows if r.topic == topic and _event_id(r.value) in already)
            if found:
                await session.execute(update(self._outbox).where(self._outbox.c.id.in_(found))
                                      .values(published_at=datetime.now(UTC)))
                log.warning("outbox.reconciled", rows=len(found))
        return len(found)

    async def prune(self, now: datetime | None = None) -> int:
        """Delete the rows published more than ``retention`` ago; returns how many."""
        before = (now or datetime.now(UTC)) - self.retention
        async with self._sessions() as session, session.begin():
            result = await session.execute(delete(self._outbox).where(self._outbox.c.published_at < before))
        deleted = int(result.rowcount or 0)  # type: ignore[attr-defined]
        self.pruned += deleted
        if deleted:
            log.info("outbox.pruned", rows=deleted, older_than_days=self.retention / timedelta(days=1))
        return deleted

    async def _prune_when_due(self) -> None:
        if time.monotonic() - self._pruned_at >= self._prune_every:
            self._pruned_at = time.monotonic()
            await self.prune()

    async def drain(self) -> int:
        """Publish until the rows committed before the call are published. A pass that found fewer
        rows than a batch saw all of them (it read every row committed before it began), so the
        drain ends there, without another transaction to find none."""
        total = 0
        while True:
            n = await self.publish_pending()
            total += n
            if n < self._batch_size:
                return total

    async def pending(self) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(self._outbox).where(self._outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    async def run(self) -> None:
        """Relay forever (cancel to stop). Errors are logged and retried with a capped backoff.

        A full pass is followed by the next at once; a shorter one emptied the outbox, so the relay
        waits for :meth:`wake` (called after a commit that added rows; a wake-up during a pass counts)
        or for the idle poll, the safety net for rows whose writer does not wake it."""
        backoff = 0.5
        while True:
            self._wakeup.clear()  # before looking: a wake-up during the pass starts the next at once
            try:
                n = await self.publish_pending()
                await self._prune_when_due()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: retry, never drop
                log.warning("outbox.relay_failed", error=type(exc).__name__, retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if n < self._batch_size:  # the pass emptied the outbox: wait for a wake-up (or the idle poll)
                await wait_for_wakeup(self._wakeup, self.idle_seconds)


def _headers(stored: dict[str, str] | None) -> list[tuple[str, bytes]] | None:
    return [(k, v.encode()) for k, v in stored.items()] if stored else None


Message = tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None]  # topic, key, value, headers


async def _send_all(producer: Producer, messages: Sequence[Message]) -> None:
    """Send ``messages`` with every one in flight at once and return when all are acknowledged
    (acks=all); each partition gets its messages in the order given (the producer keeps a
    partition's in-flight batches in order). An aiokafka producer is handed whole batches, one
    per partition as far as they fit (``create_batch``/``send_batch``): a message then costs an
    append, not a send of its own with its own future (most of a relay pass's CPU). The partition
    of a key is the producer's own default partitioner's. Any other producer: one send each."""
    if not isinstance(producer, AIOKafkaProducer):
        futures = [await producer.send(topic, value, key=key, headers=headers)
                   for topic, key, value, headers in messages]
        await asyncio.gather(*futures)
        return
    partitioner = DefaultPartitioner()
    partitions: dict[str, list[int]] = {}
    of_key: dict[tuple[str, bytes | None], int] = {}
    open_batches: dict[tuple[str, int], BatchBuilder] = {}
    futures = []

    async def submit(topic: str, partition: int, batch: BatchBuilder) -> None:
        batch.close()  # nothing else is added to it (a send() of another caller would be)
        futures.append(await producer.send_batch(batch, topic, partition=partition))

    for topic, key, value, headers in messages:
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        partition = of_key.get((topic, key))
        if partition is None or key is None:
            ids = partitions[topic]
            partition = of_key[(topic, key)] = partitioner(key, ids, ids)
        batch = open_batches.get((topic, partition))
        if batch is not None and batch.append(timestamp=None, key=key, value=value, headers=headers or []) is not None:
            continue
        if batch is not None:  # full: on its way, and a new one for the partition
            await submit(topic, partition, batch)
        batch = open_batches[(topic, partition)] = producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
            raise ValueError("a message larger than the producer's batch")  # an empty batch takes any one
    for (topic, partition), batch in open_batches.items():
        await submit(topic, partition, batch)
    await asyncio.gather(*futures)


class Outgoing(Protocol):
    """An event as the outbox stores it: an :class:`Envelope`, or one already encoded."""

    def key(self) -> bytes: ...

    def to_json(self) -> bytes: ...


async def add_many_to_outbox(session: AsyncSession, outbox: Table, topic: str, events: Sequence[Outgoing]) -> None:
    """One multi-row write for a batch of outgoing events, in the order given (COPY on PostgreSQL)."""
    session.info[_WROTE_OUTBOX] = True  # COPY goes around the session's statements: say so here
    await copy_rows(session, outbox, [{"topic": topic, "key": e.key(), "value": e.to_json(), "headers": None}
                                      for e in events])
