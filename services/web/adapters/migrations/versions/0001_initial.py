"""Web front: calendar feed secrets and family link revocations.

Revision ID: web_0001
"""

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "web_0001"
down_revision = None
SCHEMA = "web"


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("caseworker_id", sa.String(200), primary_key=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "family_link_revocations",
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("revoked_before", UtcDateTime(), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("family_link_revocations", schema=SCHEMA)
    op.drop_table("calendar_feeds", schema=SCHEMA)
