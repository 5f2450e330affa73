"""Helpers for FastStream batch subscribers: every service consumes in batches, in its own
consumer group, and commits the offsets only after the batch's transaction and outbox relay
(NACK_ON_ERROR: an exception seeks back, so the batch is redelivered, never skipped)."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord
from faststream import AckPolicy

BATCH_SUBSCRIBER: dict[str, Any] = {
    "batch": True,
    "max_records": 500,
    "batch_timeout_ms": 50,
    # Let the broker gather a worthwhile batch (or wait at most 50 ms): a transaction per batch is
    # what makes a backlog fast; at low rates this adds at most 50 ms of latency.
    "fetch_min_bytes": 64 * 1024,
    "fetch_max_wait_ms": 50,
    "ack_policy": AckPolicy.NACK_ON_ERROR,
    "auto_offset_reset": "earliest",
}


def raw_records(message: Any) -> list[ConsumerRecord[bytes, bytes]]:
    """The aiokafka records behind a FastStream batch message."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, (tuple, list)) else [raw]
