"""The ``ehc`` console script (DESIGN §7): one command line for the three services.

    ehc infra up|down|status          local Kafka (KRaft) and PostgreSQL for tests and `ehc run`
    ehc deadlines compute|serve|rebuild
    ehc intake serve|import
    ehc notifier serve|subscriptions
    ehc intake|deadlines|notifier dead-letters list|show|replay
    ehc report timeliness
    ehc run                           the whole pipeline on one machine
    ehc docs                          JSON Schema of the contracts and AsyncAPI of each service
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from services.deadlines.entrypoints.cli import deadlines_app
from services.intake.entrypoints.cli import intake_app
from services.intake.entrypoints.report_cli import LIVE_SOURCE, report_app
from services.notifier.entrypoints.cli import subscriptions_app
from services.reconcile import mount as mount_reconcile
from shared.dead_letters_cli import dead_letters_app
from shared.local_infra.cli import infra_app


def _live_timeliness(year: int):  # type: ignore[no-untyped-def]
    """`ehc report timeliness` without --from-file: the figures from the deadlines service's data."""
    from services.deadlines.entrypoints.reports import live_timeliness

    return live_timeliness(year, _settings())


app = typer.Typer(help="EHC statutory deadlines: intake, deadlines engine and notifier.", no_args_is_help=True,
                  pretty_exceptions_enable=False, context_settings={"obj": {LIVE_SOURCE: _live_timeliness}})
notifier_app = typer.Typer(help="Notifier: caseworkers, families and managers.", no_args_is_help=True)
web_app = typer.Typer(help="The web front: pages for caseworkers, managers and families.", no_args_is_help=True)
app.add_typer(infra_app, name="infra", help="Local Kafka and PostgreSQL (tests, `ehc run`).")
app.add_typer(deadlines_app, name="deadlines", help="Deadlines engine and service.")
app.add_typer(intake_app, name="intake")
app.add_typer(notifier_app, name="notifier")
app.add_typer(web_app, name="web")
notifier_app.add_typer(subscriptions_app, name="subscriptions",
                       help="Managers' subscriptions to breach alerts and digests.")
app.add_typer(report_app, name="report", help="Reports, e.g. the DfE 20-week timeliness figures.")


def _held_records(service: str):  # type: ignore[no-untyped-def]
    def load():  # type: ignore[no-untyped-def]  # imported when a command runs, not at start-up
        from importlib import import_module

        return import_module(f"services.{service}.adapters.tables").held_records

    return load


for _name, _app in (("intake", intake_app), ("deadlines", deadlines_app), ("notifier", notifier_app)):
    _app.add_typer(dead_letters_app(_name, _held_records(_name)), name="dead-letters",
                   help="Records this service parked (could not decode or handle): list, show, replay.")
mount_reconcile(report_app)  # `ehc report reconcile`: shadow mode, intake's importer and the deadlines engine


def _settings():  # type: ignore[no-untyped-def]
    from shared.logging import configure_logging
    from shared.settings import load_settings

    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    return settings


def _serve(service: str, bootstrap) -> None:  # type: ignore[no-untyped-def]
    """Run one service; unusable settings stop it with one line and exit status 2 (never a traceback)."""
    from shared.runtime import serve
    from shared.settings import SettingsError

    async def run() -> None:
        # Kafka clients must be created inside the running event loop.
        await serve(bootstrap(_settings()).runtime())

    try:
        asyncio.run(run())
    except SettingsError as exc:
        typer.echo(f"ehc {service} serve: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None


@deadlines_app.command("serve")
def deadlines_serve() -> None:
    """Run the deadlines service: case events, timers, read API."""
    from services.deadlines.bootstrap import bootstrap
    _serve("deadlines", bootstrap)


@web_app.command("serve")
def web_serve() -> None:
    """Run the web front (it reads the deadlines and notifier APIs, writes through intake's webhook)."""
    from services.web.bootstrap import bootstrap
    asyncio.run(_serve(bootstrap))


@notifier_app.command("serve")
def notifier_serve() -> None:
    """Run the notifier: deadline events in, emails and texts out."""
    from services.notifier.bootstrap import bootstrap
    _serve("notifier", bootstrap)


@app.command("run")
def run(
    sample: bool = typer.Option(True, help="Send a sample request through the pipeline and show the email."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Keep the pipeline up until Ctrl-C."),
) -> None:
    """The whole pipeline on one machine: local Kafka, SQLite, a local mail server and SMS file sink."""
    from services.pipeline import run_pipeline

    raise typer.Exit(asyncio.run(run_pipeline(sample=sample, keep_running=keep_running)))


@app.command("docs")
def docs(out: Path = typer.Option(Path("docs/contracts"), help="Folder to write into.")) -> None:
    """Write the JSON Schema of every contract and the AsyncAPI document of each service."""
    from services.docs import write_docs

    for path in write_docs(out):
        typer.echo(path)



@deadlines_app.command("rebuild")
def deadlines_rebuild(
    batch: int = typer.Option(500, help="Cases recomputed per transaction."),
    store_batch: int = typer.Option(5000, help="Events read and stored per transaction while replaying."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Publish and write nothing: report every deadline that "
                                 "would be added, moved, change status or be removed, with the reason, and "
                                 "every case whose data-quality warnings would change."),
    changes_out: Path | None = typer.Option(None, "--changes", help="With --dry-run: write each change as a JSON "
                                            "line to this file ('-' for stdout)."),
) -> None:
    """Rebuild all state by replaying ehc.case-events from the beginning; publish only what changed."""
    import json
    import sys

    async def go() -> None:
        from services.deadlines.bootstrap import bootstrap
        from services.deadlines.entrypoints.rebuild import rebuild

        app_ = bootstrap(_settings())
        out = None if changes_out is None else sys.stdout if str(changes_out) == "-" else changes_out.open("w")

        def on_change(change: dict) -> None:  # type: ignore[type-arg]
            if out is not None:
                out.write(json.dumps(change) + "\n")

        await app_.start(consume=False, schedule=False)
        try:
            report = await rebuild(app_, batch, dry_run=dry_run, on_change=on_change, on_quality=on_change,
                                   store_batch=store_batch)
        finally:
            await app_.stop()
            if out is not None and out is not sys.stdout:
                out.close()
        typer.echo(report.summary(), err=out is sys.stdout)

    if changes_out is not None and not dry_run:
        raise typer.BadParameter("--changes goes with --dry-run")
    asyncio.run(go())


if __name__ == "__main__":
    app()
