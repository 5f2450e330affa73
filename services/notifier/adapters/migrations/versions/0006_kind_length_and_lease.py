"""Notifier: a notification's kind and idempotency key long enough for the longest the code makes
(an exception nudge's kind holds the event id, up to 200 characters); a lease on every claimed row.

Revision ID: notifier_0006
"""

import sqlalchemy as sa
from alembic import context, op

revision = "notifier_0006"
down_revision = "notifier_0005"
SCHEMA = "notifier"


def _schema() -> str | None:
    """The schema really used (alembic's ALTER statements do not go through the engine's
    schema_translate_map, which CREATE TABLE does): the service's schema, or none on SQLite."""
    return context.config.attributes.get("schema")


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=_schema()) as batch:
        batch.alter_column("kind", type_=sa.String(240), existing_type=sa.String(40), existing_nullable=False)
        batch.alter_column("idempotency_key", type_=sa.String(1000), existing_type=sa.String(600),
                           existing_nullable=False)
        # a row in ``sending`` whose lease has run out was interrupted: the sweep settles it
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=_schema()) as batch:
        batch.drop_column("lease_until")
        batch.alter_column("idempotency_key", type_=sa.String(600), existing_type=sa.String(1000),
                           existing_nullable=False)
        batch.alter_column("kind", type_=sa.String(40), existing_type=sa.String(240), existing_nullable=False)
