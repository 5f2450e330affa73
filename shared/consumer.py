"""Every service's Kafka consumers: batch subscribers with per-record isolation.

Batches: every service consumes in batches, in its own consumer group, and commits the offsets
only after the batch's transaction (an exception seeks back, so the batch is redelivered, never
skipped). The commit itself runs in the background (:class:`OffsetCommitter`): the next batch does
not wait for the group coordinator. The notifier and intake relay their outbox before the commit; the
deadlines service wakes its relay instead and publishes after the commit (the outbox keeps the
events until they are out).

Isolation (:func:`isolated_batch`): one bad record never blocks the others.

- FastStream neither parses headers strictly nor decodes bodies (:data:`BATCH_SUBSCRIBER`'s parser
  and decoder); each record is decoded by the service itself, after limits on size and JSON depth
  (:func:`check_json`), so a body nested 50,000 deep or not UTF-8 is one undecodable record.
- A record that cannot be decoded is parked at once (retrying cannot help). When a batch's handling
  fails, the records are handled one by one, each retried up to ``max_attempts`` times with backoff;
  the good ones commit, the bad one is parked on the service's dead-letter topic (shared.dead_letters).
- A case with a parked record is held: its later records are parked behind it, in order, until an
  operator replays them (``ehc <service> dead-letters replay``).
- A failure of the infrastructure (database or broker unreachable) is not the record's fault: the
  batch is redelivered after a growing pause, nothing is parked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.contracts.errors import describe_validation_error
from shared.dead_letters import REPLAY_HEADER, DeadLetters, Original, key_hash
from shared.logging import get_logger
from shared.settings import DeadLetterSettings

log = get_logger(__name__)
T = TypeVar("T")

CONSUMED = Counter("ehc_consumer_records_total", "Records consumed, by what became of them",
                   ["service", "consumer", "outcome"])


async def _parse_batch(message: tuple[ConsumerRecord[bytes, bytes], ...], original: Any) -> Any:
    """FastStream's batch parser, but a header value that is not UTF-8 does not fail the batch."""
    try:
        return await original(message)
    except UnicodeDecodeError:
        clean = tuple(dataclasses.replace(r, headers=[(k, v.decode(errors="replace").encode())
                                                       for k, v in r.headers]) for r in message)
        parsed = await original(clean)
        parsed.raw_message = message  # the records as they came: the originals are what gets parked
        return parsed


async def _no_decode(_message: Any) -> None:
    """Bodies are decoded by each service, per record and with limits (never by FastStream)."""
    return None


BATCH_SUBSCRIBER: dict[str, Any] = {
    "batch": True,
    "max_records": 500,
    # A transaction per batch is what makes a backlog fast, and batches form without waiting: what
    # arrives while a batch is handled is prefetched and taken in one go. So the broker answers a
    # fetch as soon as one record is there (fetch_min_bytes 1: a larger minimum held every fetch for
    # fetch_max_wait_ms at low rates, and aiokafka sends a broker no new fetch while one is pending),
    # and a poll that found nothing pauses only briefly (FastStream sleeps batch_timeout_ms after it).
    "batch_timeout_ms": 10,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 50,
    # the handler (isolated_batch) rewinds a failed batch and commits a handled one, in the background
    "ack_policy": AckPolicy.MANUAL,
    "auto_offset_reset": "earliest",
    "parser": _parse_batch,
    "decoder": _no_decode,
}


def raw_records(message: Any) -> list[ConsumerRecord[bytes, bytes]]:
    """The aiokafka records behind a FastStream batch message."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, (tuple, list)) else [raw]


class Undecodable(ValueError):
    """A record that cannot be decoded; the message names the problem, never the content."""


_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def check_json(value: bytes, limits: DeadLetterSettings) -> None:
    """Refuse what would exhaust the decoder: too many bytes, or nesting deeper than the limit
    (counted on brackets outside strings, so it costs a scan, never a recursion)."""
    if len(value) > limits.max_record_bytes:
        raise Undecodable(f"record of {len(value)} bytes, over the limit of {limits.max_record_bytes}")
    if value.count(b"[") + value.count(b"{") <= limits.max_json_depth:
        return  # the usual event: cannot be too deep
    depth = 0
    for match in _JSON_TOKENS.finditer(value):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limits.max_json_depth:
                raise Undecodable(f"JSON nested deeper than {limits.max_json_depth} levels")
        elif token in (b"]", b"}"):
            depth -= 1


def describe_failure(exc: BaseException) -> str:
    """One line about a failure: the kind of error and, where it is known to hold no record content,
    the message (a database error's text quotes the statement's values, so only its kind is kept)."""
    if isinstance(exc, ValidationError):
        return f"invalid: {describe_validation_error(exc)}"
    if isinstance(exc, Undecodable):
        return f"undecodable: {exc}"
    if isinstance(exc, DBAPIError):
        return f"database refused it: {type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__}"
    if isinstance(exc, UnicodeDecodeError):
        return f"undecodable: not UTF-8 (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "undecodable: nested too deeply"
    if isinstance(exc, ValueError) and getattr(exc, "safe_to_show", False):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


# SQLSTATE classes of a database that is not there for anyone: connection exception (08),
# insufficient resources (53: too many connections), operator intervention (57: shutting down,
# starting up, a restart). SQLAlchemy's asyncpg dialect raises these as a plain DBAPIError.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57")


def is_transient(exc: BaseException) -> bool:
    """The infrastructure failed, not the record: retry the batch later, park nothing."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and str(getattr(exc.orig, "sqlstate", None) or "")[:2] in _UNAVAILABLE_SQLSTATES:
        return True
    return isinstance(exc, (OperationalError, InterfaceError, KafkaConnectionError, KafkaTimeoutError,
                            ConnectionError, TimeoutError, OSError))


@dataclasses.dataclass
class Isolated(Generic[T]):
    """One consumer (one subscribed topic) of a service."""

    name: str  # e.g. deadlines, notifier-contacts
    dead_letters: DeadLetters
    decode: Callable[[ConsumerRecord[bytes, bytes]], T]
    handle: Callable[[Sequence[tuple[ConsumerRecord[bytes, bytes], T]]], Awaitable[None]]
    limits: DeadLetterSettings
    _infra_failures: int = 0
    commits: OffsetCommitter = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.commits = OffsetCommitter(self.name)

    @property
    def service(self) -> str:
        return self.dead_letters.service

    def _count(self, outcome: str, n: int = 1) -> None:
        if n:
            CONSUMED.labels(self.service, self.name, outcome).inc(n)

    async def __call__(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        try:
            await self._consume(records)
            self._infra_failures = 0
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The database or broker is down: wait (longer each time), then let the batch be redelivered.
            self._infra_failures += 1
            pause = min(30.0, self.limits.retry_backoff_seconds * 2 ** min(self._infra_failures, 6))
            log.warning("consumer.infrastructure_unavailable", service=self.service, consumer=self.name,
                        error=type(exc).__name__, retry_in_s=pause)
            await asyncio.sleep(pause)
            raise

    async def _consume(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        self._count("consumed", len(records))
        held = await self.dead_letters.held(self.name, filter(None, (key_hash(r.key) for r in records)))
        ready: list[tuple[ConsumerRecord[bytes, bytes], T]] = []
        for record in records:
            case = key_hash(record.key)
            replay_of = _header(record, REPLAY_HEADER)
            if case is not None and case in held:
                pending = held[case]
                if replay_of is not None and pending and pending[0] == replay_of:
                    await self._redrive(record, case, held)
                elif replay_of is not None and replay_of in pending:
                    log.warning("dead_letter.still_held", service=self.service, consumer=self.name,
                                dead_letter_id=replay_of, behind=pending[0])
                else:
                    await self._park(record, f"held: an earlier record of this case is parked ({pending[0]})", 0,
                                     held, held_behind=pending[0])
                continue
            try:
                ready.append((record, self.decode(record)))
            except Exception as exc:  # noqa: BLE001 - any decoding failure parks the record
                await self._park(record, describe_failure(exc), 0, held)
        if not ready:
            return
        try:
            await self.handle(ready)
            self._count("processed", len(ready))
            return
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("consumer.batch_failed", service=self.service, consumer=self.name, records=len(ready),
                        error=type(exc).__name__)
        for record, value in ready:  # one by one: the good neighbours commit, the bad one is parked
            case = key_hash(record.key)
            if case is not None and case in held:
                await self._park(record, f"held: an earlier record of this case is parked ({held[case][0]})", 0,
                                 held, held_behind=held[case][0])
                continue
            attempts, error = await self._attempt(record, value)
            if error is None:
                self._count("processed")
            else:
                await self._park(record, describe_failure(error), attempts, held)

    async def _attempt(self, record: ConsumerRecord[bytes, bytes], value: T) -> tuple[int, BaseException | None]:
        """Handle one record, up to ``max_attempts`` times with doubling pauses between."""
        error: BaseException | None = None
        for attempt in range(1, self.limits.max_attempts + 1):
            if attempt > 1:
                self._count("retried")
                await asyncio.sleep(self.limits.retry_backoff_seconds * 2 ** (attempt - 2))
            try:
                await self.handle([(record, value)])
                return attempt, None
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = exc
        return self.limits.max_attempts, error

    async def _redrive(self, record: ConsumerRecord[bytes, bytes], case: str, held: dict[str, list[str]]) -> None:
        """A replayed record that is its case's earliest held one: handle it; on success it is released."""
        letter_id = held[case][0]
        try:
            value = self.decode(record)
        except Exception as exc:  # noqa: BLE001
            log.error("dead_letter.replay_failed", service=self.service, consumer=self.name, dead_letter_id=letter_id,
                      reason=describe_failure(exc))
            return
        _attempts, error = await self._attempt(record, value)
        if error is not None:
            log.error("dead_letter.replay_failed", service=self.service, consumer=self.name, dead_letter_id=letter_id,
                      reason=describe_failure(error))
            return
        self._count("processed")
        await self.dead_letters.release(self.name, letter_id)
        held[case].pop(0)
        if not held[case]:
            del held[case]

    async def _park(self, record: ConsumerRecord[bytes, bytes], reason: str, attempts: int,
                    held: dict[str, list[str]], held_behind: str | None = None) -> None:
        original = Original(record.topic, record.partition, record.offset, record.key, record.value,
                            tuple((k, v) for k, v in record.headers))
        letter_id = await self.dead_letters.park(self.name, original, reason, attempts, held_behind)
        self._count("held" if held_behind else "parked")
        case = key_hash(record.key)
        if case is not None:
            pending = held.setdefault(case, [])
            if letter_id not in pending:
                pending.append(letter_id)


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers:
        if key == name:
            return value.decode(errors="replace")
    return None


class OffsetCommitter:
    """Commits a consumer's handled offsets in the background, so the next batch is not held up by
    the group coordinator (at 200 events/s a commit was 6.8 ms of a 21.7 ms cycle: Kafka 4's
    coordinator lingers 5 ms to batch its writes). At most one commit is in flight; the batches
    handled meanwhile are merged (the next offset to read, per partition) and committed after it.
    Only handled batches are ever given, so no commit passes an unhandled record.

    A commit refused because the partitions moved (a rebalance) is dropped: their new owner starts
    from the last commit, and every consumer drops what it has seen (processed ids), as after a
    crash. A commit that failed on the way goes with the next batch's. Before partitions
    are given away in a rebalance, the rebalance listener waits for the commits (:meth:`settle`)."""

    def __init__(self, name: str, timeout_s: float = 30.0) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._pending: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None

    def processed(self, consumer: Any, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """These records are handled: commit past them, in the background."""
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            self._pending[tp] = max(self._pending.get(tp, 0), r.offset + 1)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit(consumer))

    async def settle(self) -> None:
        """Wait until the commit in flight, and those queued behind it, are done or given up."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _commit(self, consumer: Any) -> None:
        while self._pending:
            offsets, self._pending = self._pending, {}
            try:
                async with asyncio.timeout(self.timeout_s):  # aiokafka retries inside; a stopped one may not end
                    await consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                log.info("consumer.commit_dropped", consumer=self.name, error=type(exc).__name__,
                         reason="the partitions moved; their new owner drops what was handled here")
            except (KafkaError, ConsumerStoppedError, TimeoutError) as exc:
                # kept for the next batch's commit; if none comes, they are handled again after a
                # restart and dropped as seen
                log.warning("consumer.commit_failed", consumer=self.name, error=type(exc).__name__)
                for tp, offset in offsets.items():
                    self._pending[tp] = max(self._pending.get(tp, 0), offset)
                return


class SettleBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before a rebalance gives partitions away, the commits of what was handled finish."""

    def __init__(self, commits: OffsetCommitter) -> None:
        self.commits = commits

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.commits.settle()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


def isolated_batch(consumer: Isolated[Any]) -> Callable[[Any], Awaitable[None]]:
    """A FastStream batch handler running ``consumer`` on the batch's records: a batch that raised is
    rewound (redelivered, never skipped); a handled one is committed by ``consumer.commits``."""

    async def on_batch(message: KafkaMessage) -> None:
        records = raw_records(message)
        try:
            await consumer(records)
        except BaseException:
            await message.nack()  # seek each partition back to the batch's first record
            raise
        consumer.commits.processed(message.consumer, records)

    return on_batch


def batch_subscriber(consumer: Isolated[Any], **overrides: Any) -> dict[str, Any]:
    """The subscriber's arguments for ``consumer`` (:data:`BATCH_SUBSCRIBER` with ``overrides``), with
    a rebalance listener that commits what was handled before partitions are given away."""
    return {**BATCH_SUBSCRIBER, **overrides, "listener": SettleBeforeRevoke(consumer.commits)}
