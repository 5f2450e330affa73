"""The notifier's tables, in the ``notifier`` schema. Personal data (addresses, names) only ever
stored encrypted (``*_encrypted`` columns, Fernet under a key from settings)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)

from shared.messaging.tables import held_records_table, outbox_table, processed_events_table

SCHEMA = "notifier"
#: rows the sender may claim when due, and rows not sent yet (these hold back later rows of their
#: case and recipient): the statuses of services.notifier.domain.policy.NotificationStatus
CLAIMABLE_SQL = "status IN ('pending', 'deferred', 'temporary-failure')"
UNSENT_SQL = "status IN ('pending', 'deferred', 'temporary-failure', 'sending')"
metadata = MetaData()
processed_events = processed_events_table(metadata, SCHEMA)
outbox = outbox_table(metadata, SCHEMA)
held_records = held_records_table(metadata, SCHEMA)

case_routing = Table(
    "case_routing",
    metadata,
    Column("case_id", String(200), primary_key=True),
    Column("caseworker_id", String(200), nullable=True),
    Column("team_id", String(200), nullable=True),
    Column("area_id", String(200), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)

contacts = Table(
    "contacts",
    metadata,
    Column("case_id", String(200), primary_key=True),
    Column("payload_encrypted", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)

caseworkers = Table(
    "caseworkers",
    metadata,
    Column("caseworker_id", String(200), primary_key=True),
    Column("email_encrypted", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("manager_ref", String(200), nullable=False),
    Column("scope", String(10), nullable=False),  # team | area | all
    Column("scope_id", String(200), nullable=True),
    Column("kind", String(20), nullable=False),  # breach | daily_digest | weekly_summary
    Column("channel", String(10), nullable=False),  # email | sms
    Column("address_encrypted", LargeBinary, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)

# One row per (deadline or digest, kind, recipient): the idempotency key makes a family's text
# impossible to send twice, however often the deadline event is redelivered.
notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("idempotency_key", String(1000), nullable=False),
    Column("case_id", String(200), nullable=True),
    Column("deadline_id", String(400), nullable=True),
    Column("kind", String(240), nullable=False),  # an exception nudge's holds the event id
    Column("recipient_kind", String(20), nullable=False),
    Column("recipient_ref", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("address_encrypted", LargeBinary, nullable=False),
    Column("template", String(80), nullable=False),
    Column("language", String(5), nullable=False, default="en"),
    Column("context", JSON, nullable=False),
    Column("status", String(30), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),  # while ``sending``: settled by the sweep after
    Column("provider_reference", String(200), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the order rows were planned in: one case's messages to one recipient go out in this order
    # (numbered by PostgreSQL; on SQLite, one writer at a time, by the planner)
    Column("seq", BigInteger, Identity(always=False), nullable=True),
    UniqueConstraint("idempotency_key", name="uq_notification_idempotency"),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_deadline", "deadline_id"),
    Index("ix_notifications_case", "case_id"),
    # the sender's claim (see sending): the due rows in order, and whether a row has an earlier one unsent
    Index("ix_notifications_claimable", "next_attempt_at", "seq", postgresql_where=text(CLAIMABLE_SQL),
          sqlite_where=text(CLAIMABLE_SQL)),
    Index("ix_notifications_unsent", "case_id", "recipient_ref", "seq", postgresql_where=text(UNSENT_SQL),
          sqlite_where=text(UNSENT_SQL)),
    Index("ix_notifications_provider_reference", "provider_reference"),
    schema=SCHEMA,
)

# The notifier's own projection of the deadlines, kept from ``ehc.deadline-events`` (never read
# from the deadlines service's tables): what the daily digests and weekly summaries list.
deadline_view = Table(
    "deadline_view",
    metadata,
    Column("deadline_id", String(400), primary_key=True),
    Column("case_id", String(200), nullable=False),
    Column("rule_id", String(100), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("responsible", String(60), nullable=False),
    Column("kind", String(20), nullable=False, default="duty"),
    Column("flags", JSON, nullable=False),
    Column("legal_source", String(200), nullable=False, default=""),
    Column("team_id", String(200), nullable=True),
    Column("caseworker_id", String(200), nullable=True),
    Column("area_id", String(200), nullable=True),
    Column("opened_on", Date, nullable=True),  # the legal start (trigger date) when the events give it
    Column("completed_on", Date, nullable=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_deadline_view_case", "case_id"),
    Index("ix_deadline_view_caseworker", "caseworker_id", "status"),
    Index("ix_deadline_view_status_due", "status", "due_on"),
    schema=SCHEMA,
)

# Each case's data-quality warnings, as the latest ``case.data_quality`` event gave them (messages
# in plain English, no personal data): the "Data to check" section of the caseworker's digest.
case_data_quality = Table(
    "case_data_quality",
    metadata,
    Column("case_id", String(200), primary_key=True),
    Column("warnings", JSON, nullable=False),
    Column("warning_count", Integer, nullable=False),
    Column("caseworker_id", String(200), nullable=True),
    Column("team_id", String(200), nullable=True),
    Column("area_id", String(200), nullable=True),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_case_data_quality_count", "warning_count"),
    schema=SCHEMA,
)

# What families wrote through their link (the web front): the text only ever encrypted, never on a
# Kafka topic; the case's history gets an ``ehc.family.message`` event with the topic and this id.
family_messages = Table(
    "family_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("case_id", String(200), nullable=False, index=True),
    Column("topic", String(20), nullable=False),
    Column("text_encrypted", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    schema=SCHEMA,
)

# Short links in families' texts (``<web base url>/f/<code>``): only an HMAC of each code is kept
# (shared/family_links.py), so a read of this table reveals no live link. One row per text sent.
family_short_links = Table(
    "family_short_links",
    metadata,
    Column("code_hmac", String(64), primary_key=True),
    Column("case_id", String(200), nullable=False, index=True),
    Column("language", String(2), nullable=False),
    Column("notification_id", String(64), nullable=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    schema=SCHEMA,
)
