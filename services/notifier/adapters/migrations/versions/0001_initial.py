"""Notifier: messaging tables, routing, encrypted contacts, subscriptions, notifications.

Revision ID: notifier_0001
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging.migration_ops import create_messaging_tables

revision = "notifier_0001"
down_revision = None
SCHEMA = "notifier"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    now = sa.func.now()
    op.create_table(
        "case_routing",
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("caseworker_id", sa.String(200), nullable=True),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("area_id", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "contacts",
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("payload_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "caseworkers",
        sa.Column("caseworker_id", sa.String(200), primary_key=True),
        sa.Column("email_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscription_id", sa.String(64), primary_key=True),
        sa.Column("manager_ref", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("scope_id", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("address_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(600), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=True),
        sa.Column("deadline_id", sa.String(400), nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("recipient_kind", sa.String(20), nullable=False),
        sa.Column("recipient_ref", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("address_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("template", sa.String(80), nullable=False),
        sa.Column("language", sa.String(5), nullable=False, server_default="en"),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider_reference", sa.String(200), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.UniqueConstraint("idempotency_key", name="uq_notification_idempotency"),
        schema=SCHEMA,
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"], schema=SCHEMA)
    op.create_index("ix_notifications_deadline", "notifications", ["deadline_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("notifications", "subscriptions", "caseworkers", "contacts", "case_routing", "outbox",
                  "processed_events"):
        op.drop_table(table, schema=SCHEMA)
