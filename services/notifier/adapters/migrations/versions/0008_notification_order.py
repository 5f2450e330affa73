"""Notifier: each notification's place in the order it was planned (``seq``), so one case's messages
to one recipient go out in the order of the events that planned them, with any number of senders
and replicas (the sender claims a row only when no earlier row to that recipient about that case is
still waiting or being sent). PostgreSQL numbers new rows itself (an identity column); SQLite (one
writer at a time) gets them from the planner.

Revision ID: notifier_0008
"""

import sqlalchemy as sa
from alembic import context, op

revision = "notifier_0008"
down_revision = "notifier_0007"
CLAIMABLE = "status IN ('pending', 'deferred', 'temporary-failure')"
UNSENT = "status IN ('pending', 'deferred', 'temporary-failure', 'sending')"


def _schema() -> str | None:
    """The schema really used (see notifier_0006): the service's schema, or none on SQLite."""
    return context.config.attributes.get("schema")


def upgrade() -> None:
    schema = _schema()
    if op.get_bind().dialect.name == "postgresql":  # existing rows are numbered as the column is added
        op.add_column("notifications", sa.Column("seq", sa.BigInteger, sa.Identity(always=False), nullable=False),
                      schema=schema)
    else:
        with op.batch_alter_table("notifications", schema=schema) as batch:
            batch.add_column(sa.Column("seq", sa.BigInteger, nullable=True))
        op.execute("UPDATE notifications SET seq = rowid")
    # the sender's two questions, each answered from a small index however long the backlog: which
    # due rows come first (claimable ones only, in order), and has this one an earlier row unsent
    op.create_index("ix_notifications_claimable", "notifications", ["next_attempt_at", "seq"], schema=schema,
                    postgresql_where=sa.text(CLAIMABLE), sqlite_where=sa.text(CLAIMABLE))
    op.create_index("ix_notifications_unsent", "notifications", ["case_id", "recipient_ref", "seq"], schema=schema,
                    postgresql_where=sa.text(UNSENT), sqlite_where=sa.text(UNSENT))


def downgrade() -> None:
    schema = _schema()
    op.drop_index("ix_notifications_unsent", "notifications", schema=schema)
    op.drop_index("ix_notifications_claimable", "notifications", schema=schema)
    with op.batch_alter_table("notifications", schema=schema) as batch:
        batch.drop_column("seq")
