"""Notifier: records parked on the dead-letter topic and the cases held behind them.

Revision ID: notifier_0003
"""

from alembic import op

from shared.messaging.migration_ops import create_held_records_table

revision = "notifier_0003"
down_revision = "notifier_0002"
SCHEMA = "notifier"


def upgrade() -> None:
    create_held_records_table(SCHEMA)


def downgrade() -> None:
    op.drop_table("held_records", schema=SCHEMA)
