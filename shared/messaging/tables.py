"""The processed-events and outbox tables every service keeps in its own schema.

Written in the same transaction as the service's effects: an event is either processed with all
its effects and outgoing messages, or not at all.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, func
from sqlalchemy.types import JSON

from shared.db import UtcDateTime


def processed_events_table(metadata: MetaData, schema: str) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(250), primary_key=True),
        Column("processed_at", UtcDateTime(), nullable=False, server_default=func.now()),
        schema=schema,
    )


def held_records_table(metadata: MetaData, schema: str) -> Table:
    """Records parked on the service's dead-letter topic and not yet re-driven. A case (hashed key)
    with a row here is held: its later records are parked behind the first, in order, until a
    replay re-drives them (shared.consumer)."""
    return Table(
        "held_records",
        metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("consumer", String(100), nullable=False),
        Column("dead_letter_id", String(100), nullable=False, unique=True),
        Column("case_key_sha256", String(64), nullable=True, index=True),
        Column("topic", String(250), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("reason", String(500), nullable=False),
        Column("parked_at", UtcDateTime(), nullable=False, server_default=func.now()),
        schema=schema,
    )


def outbox_table(metadata: MetaData, schema: str) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("topic", String(250), nullable=False),
        Column("key", LargeBinary, nullable=True),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=True),
        Column("created_at", UtcDateTime(), nullable=False, server_default=func.now()),
        Column("published_at", UtcDateTime(), nullable=True, index=True),
        schema=schema,
    )
