"""The ``ehc`` console script (DESIGN §7): one command line for the three services.

    ehc infra up|down|status          local Kafka (KRaft) and PostgreSQL for tests and `ehc run`
    ehc deadlines compute|serve|rebuild
    ehc intake serve|import
    ehc notifier serve|subscriptions
    ehc intake|deadlines|notifier dead-letters list|show|replay
    ehc report timeliness
    ehc run                           the whole pipeline on one machine
    ehc docs                          JSON Schema of the contracts and AsyncAPI of each service

Every subcommand is imported only when it runs (shared/lazy_cli.py), so `ehc --help` and
`ehc <group> --help` import no service. A command added to a service's own Typer app must also be
listed below with its one-line help; tests/test_cli_lazy.py fails until it is, and checks the whole
tree against tests/fixtures/cli_tree.json (update that file when a command or option is added).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shared.lazy_cli import Target, lazy_group

# The key of the live source in the click context object: report_cli.LIVE_SOURCE (a test checks they
# agree; importing report_cli here would import intake's SEN2 reader for every command).
LIVE_SOURCE = "live_timeliness"
DEAD_LETTERS_HELP = "Records this service parked (could not decode or handle): list, show, replay."


def _live_timeliness(year: int):  # type: ignore[no-untyped-def]
    """`ehc report timeliness` without --from-file: the figures from the deadlines service's data."""
    from services.deadlines.entrypoints.reports import live_timeliness

    return live_timeliness(year, _settings())


def _dead_letters(service: str) -> Target:
    def load():  # type: ignore[no-untyped-def]  # imported when a command runs, not at start-up
        from importlib import import_module

        from shared.dead_letters_cli import dead_letters_app

        return dead_letters_app(service, lambda: import_module(f"services.{service}.adapters.tables").held_records)

    return load


# Every group: help without arguments, as click's plain text (typer's Rich panels would import rich
# and markdown-it for every `ehc --help`: more than half of its CPU).
_GROUP: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None}

# Every subcommand below is imported only when it is used (shared/lazy_cli.py): `ehc --help` and
# `ehc <group> --help` import no service. Each entry: name -> (where the command is, its one-line help).
_DEADLINES = "services.deadlines.entrypoints.cli:deadlines_app"
_INTAKE = "services.intake.entrypoints.cli:intake_app"
_INFRA = "shared.local_infra.cli:infra_app"
_REPORTS = "services.intake.entrypoints.report_cli:report_app"

app = typer.Typer(help="EHC statutory deadlines: intake, deadlines engine and notifier.", **_GROUP,
                  pretty_exceptions_enable=False, context_settings={"obj": {LIVE_SOURCE: _live_timeliness}},
                  cls=lazy_group({
    # typer builds each option with pydantic: even the commands of this module are built when used
    "run": ("services.cli:run", "The whole pipeline on one machine: local Kafka, SQLite, a local mail server and "
            "SMS file sink."),
    "docs": ("services.cli:docs", "Write the JSON Schema of every contract and the AsyncAPI document of each "
             "service."),
}))
infra_app = typer.Typer(**_GROUP, cls=lazy_group({
    "up": (f"{_INFRA} up", "Start the components (idempotent), wait until they answer and create the Kafka topics."),
    "down": (f"{_INFRA} down", "Stop the components (SIGTERM / fast shutdown, forced after 30 s). Data is kept."),
    "status": (f"{_INFRA} status", "One line per component; exit status 1 unless all are up and answering."),
}))
deadlines_app = typer.Typer(help="Statutory EHC deadlines.", **_GROUP, cls=lazy_group({
    "compute": (f"{_DEADLINES} compute", "Read canonical case events (JSON lines, any cases, any order) on stdin; "
                "print one JSON object per deadline on stdout."),
    "what-if": (f"{_DEADLINES} what-if", "What-if: when would each deadline fall; by when must a step happen; what a "
                "missed deadline puts at risk."),
    "rebuild": ("services.cli:deadlines_rebuild", "Rebuild all state by replaying ehc.case-events from the "
                "beginning; publish only what changed."),
    "dead-letters": (_dead_letters("deadlines"), DEAD_LETTERS_HELP),
}))
intake_app = typer.Typer(help="Intake: case events from councils' systems.", **_GROUP, cls=lazy_group({
    "serve": (f"{_INTAKE} serve", "Run intake: source topics, the webhook and the outbox relay."),
    "import": (f"{_INTAKE} import", "Convert a file into canonical case events and publish them (or print them with "
               "--dry-run)."),
    "dead-letters": (_dead_letters("intake"), DEAD_LETTERS_HELP),
}))
notifier_app = typer.Typer(help="Notifier: caseworkers, families and managers.", **_GROUP,
                           cls=lazy_group({
    "subscriptions": ("services.notifier.entrypoints.cli:subscriptions_app",
                      "Managers' subscriptions to breach alerts and digests."),
    "dead-letters": (_dead_letters("notifier"), DEAD_LETTERS_HELP),
}))
web_app = typer.Typer(help="The web front: pages for caseworkers, managers and families.", **_GROUP)
report_app = typer.Typer(help="Reports: DfE timeliness, shadow-mode reconciliation.", **_GROUP,
                         cls=lazy_group({
    "timeliness": (f"{_REPORTS} timeliness", "The DfE 20-week figures (including and excluding exceptions) for plans "
                   "issued in YEAR, from an SEN2 file or (without --from-file) the deadlines service's data."),
    "reconcile": ("services.reconcile:reconcile_command", "Shadow mode: list every disagreement between our deadlines "
                  "and the council's records, per case."),
}))
app.add_typer(infra_app, name="infra", help="Local Kafka and PostgreSQL (tests, `ehc run`).")
app.add_typer(deadlines_app, name="deadlines", help="Deadlines engine and service.")
app.add_typer(intake_app, name="intake")
app.add_typer(notifier_app, name="notifier")
app.add_typer(web_app, name="web")
app.add_typer(report_app, name="report", help="Reports: DfE timeliness, reconciliation.")


def _settings():  # type: ignore[no-untyped-def]
    from shared.logging import configure_logging
    from shared.settings import load_settings

    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    return settings


def _serve(service: str, bootstrap) -> None:  # type: ignore[no-untyped-def]
    """Run one service; unusable settings stop it with one line and exit status 2 (never a traceback)."""
    import asyncio

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
    _serve("web", bootstrap)


@notifier_app.command("serve")
def notifier_serve() -> None:
    """Run the notifier: deadline events in, emails and texts out."""
    from services.notifier.bootstrap import bootstrap
    _serve("notifier", bootstrap)


def run(
    sample: bool = typer.Option(True, help="Send a sample request through the pipeline and show the email."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Keep the pipeline up until Ctrl-C."),
) -> None:
    """The whole pipeline on one machine: local Kafka, SQLite, a local mail server and SMS file sink."""
    import asyncio

    from services.pipeline import run_pipeline

    raise typer.Exit(asyncio.run(run_pipeline(sample=sample, keep_running=keep_running)))


def docs(out: Path = typer.Option(Path("docs/contracts"), help="Folder to write into.")) -> None:
    """Write the JSON Schema of every contract and the AsyncAPI document of each service."""
    from services.docs import write_docs

    for path in write_docs(out):
        typer.echo(path)



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
    import asyncio
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
