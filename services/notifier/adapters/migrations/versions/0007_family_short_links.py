"""Notifier: short links in families' texts, kept as an HMAC of the code with the case, the
family's language, expiry and revocation.

Revision ID: notifier_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0007"
down_revision = "notifier_0006"
SCHEMA = "notifier"


def upgrade() -> None:
    op.create_table(
        "family_short_links",
        sa.Column("code_hmac", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("notification_id", sa.String(64), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_family_short_links_case_id", "family_short_links", ["case_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_family_short_links_case_id", "family_short_links", schema=SCHEMA)
    op.drop_table("family_short_links", schema=SCHEMA)
