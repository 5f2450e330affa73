"""Intake's tables, in the ``intake`` schema (translated per environment, see shared.db)."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, func

from shared.db import UtcDateTime
from shared.messaging.tables import held_records_table, outbox_table, processed_events_table

SCHEMA = "intake"
metadata = MetaData()

processed_events = processed_events_table(metadata, SCHEMA)
outbox = outbox_table(metadata, SCHEMA)
held_records = held_records_table(metadata, SCHEMA)

# De-duplication by (source, event id): a record seen once is never published twice.

received_events = Table(
    "received_events",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)

# Webhook replay protection: a signature is accepted once within the allowed clock skew.
webhook_signatures = Table(
    "webhook_signatures",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("signature", String(128), primary_key=True),
    Column("received_at", UtcDateTime(), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)
