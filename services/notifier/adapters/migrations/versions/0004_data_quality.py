"""Notifier: each case's data-quality warnings (from case.data_quality), for the caseworker's digest.

Revision ID: notifier_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0004"
down_revision = "notifier_0003"
SCHEMA = "notifier"


def upgrade() -> None:
    op.create_table(
        "case_data_quality",
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("warning_count", sa.Integer, nullable=False),
        sa.Column("caseworker_id", sa.String(200), nullable=True),
        sa.Column("team_id", sa.String(200), nullable=True),
        sa.Column("area_id", sa.String(200), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_case_data_quality_count", "case_data_quality", ["warning_count"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("case_data_quality", schema=SCHEMA)
