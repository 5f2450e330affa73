"""Deadlines: each case's data-quality warnings, stored when the case is recomputed.

Revision ID: deadlines_0003
"""

import sqlalchemy as sa
from alembic import context, op

revision = "deadlines_0003"
down_revision = "deadlines_0002"


def _real_schema() -> str | None:
    """ALTER TABLE is rendered by alembic itself, without the schema translation: the real schema."""
    return context.config.attributes.get("schema")


def upgrade() -> None:
    op.add_column("cases", sa.Column("data_quality", sa.JSON, nullable=True), schema=_real_schema())


def downgrade() -> None:
    op.drop_column("cases", "data_quality", schema=_real_schema())
