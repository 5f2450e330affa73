"""The web front's own tables, in the ``web`` schema: calendar feed secrets and revoked family links.
It reads cases and deadlines only through the other services' APIs, never their tables."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table

from shared.db import UtcDateTime

SCHEMA = "web"
metadata = MetaData()

# A caseworker's calendar feed: only a hash of its secret is kept; renewing replaces it.
calendar_feeds = Table(
    "calendar_feeds",
    metadata,
    Column("caseworker_id", String(200), primary_key=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    schema=SCHEMA,
)

# Family links of a case issued before ``revoked_before`` are refused (a new link works again).
family_link_revocations = Table(
    "family_link_revocations",
    metadata,
    Column("case_id", String(200), primary_key=True),
    Column("revoked_before", UtcDateTime(), nullable=False),
    schema=SCHEMA,
)
