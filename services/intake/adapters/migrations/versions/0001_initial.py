"""Intake: messaging tables, received events, webhook signatures.

Revision ID: intake_0001
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging.migration_ops import create_messaging_tables

revision = "intake_0001"
down_revision = None
SCHEMA = "intake"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    op.create_table(
        "received_events",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_signatures",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("signature", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("webhook_signatures", "received_events", "outbox", "processed_events"):
        op.drop_table(table, schema=SCHEMA)
