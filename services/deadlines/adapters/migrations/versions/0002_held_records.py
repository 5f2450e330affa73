"""Deadlines: records parked on the dead-letter topic and the cases held behind them; a case's
data-quality problem.

Revision ID: deadlines_0002
"""

import sqlalchemy as sa
from alembic import context, op

from shared.messaging.migration_ops import create_held_records_table

revision = "deadlines_0002"
down_revision = "deadlines_0001"
SCHEMA = "deadlines"


def _real_schema() -> str | None:
    """ALTER TABLE is rendered by alembic itself, without the schema translation: the real schema."""
    return context.config.attributes.get("schema")


def upgrade() -> None:
    create_held_records_table(SCHEMA)
    op.add_column("cases", sa.Column("problem", sa.String(500), nullable=True), schema=_real_schema())


def downgrade() -> None:
    op.drop_column("cases", "problem", schema=_real_schema())
    op.drop_table("held_records", schema=SCHEMA)
