"""Managers' subscriptions: add (an idempotent upsert), list (addresses masked), remove, and load
the YAML file named by settings at start.

The same use cases serve the HTTP API, the ``ehc notifier subscriptions`` command line and the
file, so a subscription is one row whichever way it came (its id is derived from what it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from services.notifier.adapters.crypto import Crypto
from services.notifier.domain.subscriptions import SubscriptionSpec, mask_address
from services.notifier.service_layer.notifications import upsert_stmt
from shared.logging import get_logger

log = get_logger(__name__)


class SubscriptionsFileError(ValueError):
    """The subscriptions file cannot be used; the message names the entry and the problem (no address)."""


@dataclass(frozen=True)
class Subscription:
    """A subscription as shown to administrators: the address masked."""

    subscription_id: str
    manager_ref: str
    scope: str
    scope_id: str | None
    kind: str
    channel: str
    address_hint: str
    active: bool
    created_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"subscription_id": self.subscription_id, "manager_ref": self.manager_ref, "scope": self.scope,
                "scope_id": self.scope_id, "kind": self.kind, "channel": self.channel,
                "address_hint": self.address_hint, "active": self.active,
                "created_at": self.created_at.isoformat() if self.created_at else None}


class SubscriptionService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], crypto: Crypto,
                 clock: Callable[[], datetime]) -> None:
        self._sessions = sessions
        self._crypto = crypto
        self._clock = clock

    async def add(self, spec: SubscriptionSpec) -> Subscription:
        async with self._sessions() as session, session.begin():
            await self._upsert(session, spec)
        log.info("notifier.subscription_saved", subscription_id=spec.subscription_id, kind=spec.kind,
                 scope=spec.scope, scope_id=spec.scope_id, channel=spec.channel)
        found = await self.get(spec.subscription_id)
        assert found is not None
        return found

    async def add_many(self, specs: Sequence[SubscriptionSpec]) -> int:
        async with self._sessions() as session, session.begin():
            for spec in specs:
                await self._upsert(session, spec)
        return len(specs)

    async def _upsert(self, session: AsyncSession, spec: SubscriptionSpec) -> None:
        values = {"subscription_id": spec.subscription_id, "manager_ref": spec.manager_ref, "scope": spec.scope,
                  "scope_id": spec.scope_id, "kind": spec.kind, "channel": spec.channel,
                  "address_encrypted": self._crypto.encrypt(spec.address), "active": True,
                  "created_at": self._clock()}
        await session.execute(upsert_stmt(session, tables.subscriptions, values, ["subscription_id"],
                                          update_keys=["address_encrypted", "active"]))

    async def get(self, subscription_id: str) -> Subscription | None:
        s = tables.subscriptions
        async with self._sessions() as session:
            row = (await session.execute(select(s).where(s.c.subscription_id == subscription_id))).first()
        return self._shown(row) if row is not None else None

    async def list_all(self) -> list[Subscription]:
        s = tables.subscriptions
        async with self._sessions() as session:
            rows = (await session.execute(select(s).order_by(s.c.manager_ref, s.c.kind, s.c.scope,
                                                             s.c.scope_id))).all()
        return [self._shown(r) for r in rows]

    async def remove(self, subscription_id: str) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(delete(tables.subscriptions)
                                           .where(tables.subscriptions.c.subscription_id == subscription_id))
        removed = bool(result.rowcount)  # type: ignore[attr-defined]
        if removed:
            log.info("notifier.subscription_removed", subscription_id=subscription_id)
        return removed

    async def load_file(self, path: Path) -> int:
        """Upsert every subscription in the YAML file (idempotent: run at every start)."""
        specs = read_subscriptions_file(path)
        count = await self.add_many(specs)
        log.info("notifier.subscriptions_loaded", path=str(path), count=count)
        return count

    def _shown(self, row: Any) -> Subscription:
        address = self._crypto.decrypt(row.address_encrypted)
        return Subscription(row.subscription_id, row.manager_ref, row.scope, row.scope_id, row.kind, row.channel,
                            mask_address(address, row.channel), bool(row.active), row.created_at)


def read_subscriptions_file(path: Path) -> list[SubscriptionSpec]:
    """Read ``subscriptions:`` (or a bare list) of entries with manager (or manager_ref), scope,
    scope_id, kind, channel and address. An error names the entry and the problem, never the address."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SubscriptionsFileError(f"{path}: cannot be read as YAML ({type(exc).__name__})") from None
    entries = raw.get("subscriptions") if isinstance(raw, dict) else raw
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SubscriptionsFileError(f"{path}: expected a list of subscriptions under 'subscriptions:'")
    specs = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise SubscriptionsFileError(f"{path}: entry {i} is not a mapping")
        entry = dict(entry)
        if "manager" in entry and "manager_ref" not in entry:
            entry["manager_ref"] = entry.pop("manager")
        try:
            specs.append(SubscriptionSpec.model_validate(entry))
        except ValidationError as exc:
            raise SubscriptionsFileError(f"{path}: entry {i}: {describe(exc)}") from None
    return specs


def describe(exc: ValidationError) -> str:
    """The problems of a subscription, without echoing the input (it holds an address)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


__all__ = ["Subscription", "SubscriptionService", "SubscriptionsFileError", "describe", "read_subscriptions_file"]
