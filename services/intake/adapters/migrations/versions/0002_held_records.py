"""Intake: records parked on the dead-letter topic and the cases held behind them.

Revision ID: intake_0002
"""

from alembic import op

from shared.messaging.migration_ops import create_held_records_table

revision = "intake_0002"
down_revision = "intake_0001"
SCHEMA = "intake"


def upgrade() -> None:
    create_held_records_table(SCHEMA)


def downgrade() -> None:
    op.drop_table("held_records", schema=SCHEMA)
