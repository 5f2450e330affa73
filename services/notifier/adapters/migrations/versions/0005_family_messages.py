"""Notifier: families' messages from the web front (text encrypted); notifications by case.

Revision ID: notifier_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0005"
down_revision = "notifier_0004"
SCHEMA = "notifier"


def upgrade() -> None:
    op.create_table(
        "family_messages",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(20), nullable=False),
        sa.Column("text_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_family_messages_case_id", "family_messages", ["case_id"], schema=SCHEMA)
    # the web front's case page lists a case's notifications
    op.create_index("ix_notifications_case", "notifications", ["case_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_notifications_case", "notifications", schema=SCHEMA)
    op.drop_table("family_messages", schema=SCHEMA)
