"""Deadlines: messaging tables, case history, cases, deadlines, timers.

Revision ID: deadlines_0001
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging.migration_ops import create_messaging_tables

revision = "deadlines_0001"
down_revision = None
SCHEMA = "deadlines"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    op.create_table(
        "case_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("supersedes", sa.String(200), nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"], schema=SCHEMA)
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("caseworker_id", sa.String(200), nullable=True),
        sa.Column("area_id", sa.String(200), nullable=True),
        sa.Column("ruleset_version", sa.String(50), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_cases_team_id", "cases", ["team_id"], schema=SCHEMA)
    op.create_index("ix_cases_caseworker_id", "cases", ["caseworker_id"], schema=SCHEMA)
    op.create_table(
        "deadlines",
        sa.Column("deadline_id", sa.String(400), primary_key=True),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("responsible", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("caseworker_id", sa.String(200), nullable=True),
        sa.Column("explanation", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_deadlines_case_id", "deadlines", ["case_id"], schema=SCHEMA)
    op.create_index("ix_deadlines_status_due", "deadlines", ["status", "due_on"], schema=SCHEMA)
    op.create_index("ix_deadlines_team_status", "deadlines", ["team_id", "status"], schema=SCHEMA)
    op.create_index("ix_deadlines_caseworker_status", "deadlines", ["caseworker_id", "status"], schema=SCHEMA)
    op.create_table(
        "timers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("deadline_id", sa.String(400), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("offset_days", sa.Integer, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("deadline_id", "kind", "offset_days", "due_on", "fire_at", name="uq_timer"),
        schema=SCHEMA,
    )
    op.create_index("ix_timers_deadline_id", "timers", ["deadline_id"], schema=SCHEMA)
    op.create_index("ix_timers_due", "timers", ["fire_at"], schema=SCHEMA,
                    postgresql_where=sa.text("fired_at IS NULL"))


def downgrade() -> None:
    for table in ("timers", "deadlines", "cases", "case_events", "outbox", "processed_events"):
        op.drop_table(table, schema=SCHEMA)
