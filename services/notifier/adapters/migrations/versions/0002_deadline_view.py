"""Notifier: its own projection of the deadlines (for digests and summaries); receipts by provider id.

Revision ID: notifier_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0002"
down_revision = "notifier_0001"
SCHEMA = "notifier"


def upgrade() -> None:
    op.create_table(
        "deadline_view",
        sa.Column("deadline_id", sa.String(400), primary_key=True),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("responsible", sa.String(60), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False, server_default="duty"),
        sa.Column("flags", sa.JSON, nullable=False),
        sa.Column("legal_source", sa.String(200), nullable=False, server_default=""),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("caseworker_id", sa.String(200), nullable=True),
        sa.Column("area_id", sa.String(200), nullable=True),
        sa.Column("opened_on", sa.Date, nullable=True),
        sa.Column("completed_on", sa.Date, nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_deadline_view_case", "deadline_view", ["case_id"], schema=SCHEMA)
    op.create_index("ix_deadline_view_caseworker", "deadline_view", ["caseworker_id", "status"], schema=SCHEMA)
    op.create_index("ix_deadline_view_status_due", "deadline_view", ["status", "due_on"], schema=SCHEMA)
    # delivery receipts that carry no reference of ours are matched on the provider's id
    op.create_index("ix_notifications_provider_reference", "notifications", ["provider_reference"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_notifications_provider_reference", "notifications", schema=SCHEMA)
    op.drop_table("deadline_view", schema=SCHEMA)
