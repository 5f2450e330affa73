"""``ehc infra up|down|status``: the local Kafka broker and PostgreSQL of the project.

``up`` prints one progress line per component on stderr and the environment for the services on
stdout, so ``ehc infra up >> .env`` (or ``eval "$(ehc infra up)"`` after adding ``export``) works.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import typer

from shared.kafka import ensure_topics
from shared.local_infra import InfraError, Started
from shared.local_infra import kafka as kafka_infra
from shared.local_infra import postgres as pg_infra
from shared.settings import KafkaSettings
from shared.topics import topic_specs

infra_app = typer.Typer(
    name="infra",
    help="Local Kafka broker (KRaft, from its jars) and PostgreSQL (Debian's) for tests and `ehc run`.",
    no_args_is_help=True,
    add_completion=False,
)


def _line(name: str, seconds: float, started: Started, extra: str = "") -> str:
    what = "already running" if started.already_running else "started"
    notes = [n for n in started.notes if n != "already running"]
    if extra:
        notes.append(extra)
    about = f"  ({'; '.join(notes)})" if notes else ""
    return f"{name:<9} {what:<15} {seconds:6.1f} s  pid {started.pid}{about}"


async def _kafka_up(within_s: float) -> str:
    t0 = time.monotonic()
    started = await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(within_s)
    created = await ensure_topics(KafkaSettings(bootstrap_servers=kafka_infra.bootstrap_servers()), topic_specs())
    if started.already_running:
        started = Started(started.name, started.pid, True, (*started.notes, "jar cache warm"))
    topics = f"{len(created)} topics created" if created else "topics present"
    return _line("kafka", time.monotonic() - t0, started, topics)


async def _postgres_up(within_s: float) -> str:
    t0 = time.monotonic()
    started = await asyncio.to_thread(pg_infra.start)
    await pg_infra.wait_ready(within_s)
    return _line("postgres", time.monotonic() - t0, started)


async def _run_all(jobs: dict[str, Callable[[], Awaitable[str]]]) -> bool:
    """Run the jobs concurrently, print each line as it finishes; False if any failed."""

    async def one(name: str, job: Callable[[], Awaitable[str]]) -> bool:
        try:
            typer.echo(await job(), err=True)
            return True
        except InfraError as exc:
            typer.secho(f"{name:<9} FAILED: {exc}", err=True, fg=typer.colors.RED)
            return False

    results = await asyncio.gather(*(one(name, job) for name, job in jobs.items()))
    return all(results)


@infra_app.command()
def up(
    kafka: bool = typer.Option(True, "--kafka/--no-kafka", help="Start the Kafka broker."),
    postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Start PostgreSQL."),
    timeout: float = typer.Option(120.0, help="Seconds to wait for each component to answer."),
) -> None:
    """Start the components (idempotent), wait until they answer and create the Kafka topics."""
    jobs: dict[str, Callable[[], Awaitable[str]]] = {}
    if kafka:
        jobs["kafka"] = lambda: _kafka_up(timeout)
    if postgres:
        jobs["postgres"] = lambda: _postgres_up(timeout)
    if not asyncio.run(_run_all(jobs)):
        raise typer.Exit(1)
    if kafka:
        typer.echo(f"EHC_KAFKA__BOOTSTRAP_SERVERS={kafka_infra.bootstrap_servers()}")
    if postgres:
        typer.echo(f"EHC_DATABASE_URL={pg_infra.database_url()}")


@infra_app.command()
def down(
    kafka: bool = typer.Option(True, "--kafka/--no-kafka", help="Stop the Kafka broker."),
    postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Stop PostgreSQL."),
) -> None:
    """Stop the components (SIGTERM / fast shutdown, forced after 30 s). Data is kept."""

    def stopper(name: str, stop: Callable[[], bool]) -> Callable[[], Awaitable[str]]:
        async def job() -> str:
            t0 = time.monotonic()
            ran = await asyncio.to_thread(stop)
            took = time.monotonic() - t0
            return f"{name:<9} {'stopped' if ran else 'was not running':<15} {took:6.1f} s"

        return job

    jobs: dict[str, Callable[[], Awaitable[str]]] = {}
    if kafka:
        jobs["kafka"] = stopper("kafka", kafka_infra.stop)
    if postgres:
        jobs["postgres"] = stopper("postgres", pg_infra.stop)
    if not asyncio.run(_run_all(jobs)):
        raise typer.Exit(1)


@infra_app.command()
def status() -> None:
    """One line per component; exit status 1 unless all are up and answering."""
    all_up = True
    for st in (kafka_infra.status(), pg_infra.status()):
        typer.echo(st.line())
        all_up = all_up and st.running and st.answering
    if not all_up:
        raise typer.Exit(1)
