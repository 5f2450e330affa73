"""Shared body of every service's alembic ``env.py``: run on the connection handed in by
:func:`shared.db.migrate`, keeping the version table in the service's own schema."""

from __future__ import annotations

from alembic import context


def run_migrations() -> None:
    cfg = context.config
    connection = cfg.attributes["connection"]
    schema = cfg.attributes["schema"]
    context.configure(
        connection=connection,
        version_table_schema=schema,
        version_table=f"alembic_version_{cfg.attributes['service']}",
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
