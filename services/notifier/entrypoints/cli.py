"""``ehc notifier subscriptions add|list|remove``: managers' subscriptions from the command line.

It talks to the notifier's database directly, through the same use cases as the HTTP API (no
broker needed), with the settings of the environment (``EHC_DATABASE_URL``,
``EHC_NOTIFIER__ENCRYPTION_KEY``, ...). Addresses are stored encrypted and shown masked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from services.notifier.adapters.crypto import crypto_from_settings
from services.notifier.domain.subscriptions import SubscriptionSpec, scope_label
from services.notifier.service_layer.subscriptions import (
    Subscription,
    SubscriptionService,
    SubscriptionsFileError,
    describe,
)
from shared.db import create_engine_for, is_sqlite, migrate, session_factory
from shared.settings import SettingsError, load_settings

SERVICE = "notifier"
MIGRATIONS = Path(__file__).resolve().parents[1] / "adapters" / "migrations"
T = TypeVar("T")

subscriptions_app = typer.Typer(help="Managers' subscriptions: breach alerts, daily at-risk lists, weekly summaries.",
                                no_args_is_help=True, add_completion=False)


def _run(action: Callable[[SubscriptionService], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = load_settings()
        cfg = settings.notifier
        engine = create_engine_for(settings, SERVICE)
        try:
            await migrate(engine, SERVICE, MIGRATIONS, None if is_sqlite(engine) else settings.schema_for(SERVICE))
            crypto = crypto_from_settings(cfg.encryption_key.get_secret_value() if cfg.encryption_key else None,
                                          settings.environment, Path("var") / "notifier.key")
            return await action(SubscriptionService(session_factory(engine), crypto, lambda: datetime.now(UTC)))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except SettingsError as exc:  # one line, never a traceback
        typer.echo(f"ehc notifier subscriptions: {exc}", err=True)
        raise typer.Exit(2) from None


def _line(s: Subscription) -> str:
    return (f"{s.subscription_id}  {s.manager_ref}  {s.kind}  {scope_label(s.scope, s.scope_id)}  {s.channel}  "
            f"{s.address_hint}")


@subscriptions_app.command("add")
def add(
    manager: Annotated[str, typer.Option(help="The manager's reference (no address), e.g. mgr-north-1.")],
    kind: Annotated[str, typer.Option(help="breach, daily_digest or weekly_summary.")],
    address: Annotated[str, typer.Option(help="Email address, or UK mobile number for breach texts.")],
    scope: Annotated[str, typer.Option(help="team, area or all.")] = "all",
    scope_id: Annotated[str | None, typer.Option(help="The team or area id (not for all).")] = None,
    channel: Annotated[str, typer.Option(help="email or sms.")] = "email",
) -> None:
    """Add a subscription (adding it again updates its address)."""
    try:
        spec = SubscriptionSpec.model_validate({"manager_ref": manager, "scope": scope, "scope_id": scope_id,
                                                "kind": kind, "channel": channel, "address": address})
    except ValidationError as exc:
        typer.echo(f"error: {describe(exc)}", err=True)
        raise typer.Exit(2) from None
    saved = _run(lambda subs: subs.add(spec))
    typer.echo(_line(saved))


@subscriptions_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False) -> None:
    """List every subscription, addresses masked."""
    found = _run(lambda subs: subs.list_all())
    for s in found:
        typer.echo(json.dumps(s.as_dict()) if as_json else _line(s))
    if not found and not as_json:
        typer.echo("no subscriptions")


@subscriptions_app.command("remove")
def remove(subscription_id: Annotated[str, typer.Argument(help="The id shown by `list`.")]) -> None:
    """Remove a subscription."""
    if not _run(lambda subs: subs.remove(subscription_id)):
        typer.echo(f"error: no subscription {subscription_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {subscription_id}")


@subscriptions_app.command("load")
def load(
    path: Annotated[Path, typer.Argument(help="A YAML file of subscriptions (as EHC_NOTIFIER__SUBSCRIPTIONS_FILE).")],
) -> None:
    """Add (or update) every subscription of a YAML file."""
    def action(subs: SubscriptionService) -> Any:
        return subs.load_file(path)

    try:
        count = _run(action)
    except SubscriptionsFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"loaded {count} subscriptions from {path}")


__all__ = ["subscriptions_app"]
