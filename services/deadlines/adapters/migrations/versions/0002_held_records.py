"""Deadlines: records parked on the dead-letter topic and the cases held behind them.

Revision ID: deadlines_0002
"""

from shared.messaging.migration_ops import create_held_records_table

revision = "deadlines_0002"
down_revision = "deadlines_0001"
SCHEMA = "deadlines"


def upgrade() -> None:
    create_held_records_table(SCHEMA)


def downgrade() -> None:
    from alembic import op

    op.drop_table("held_records", schema=SCHEMA)
