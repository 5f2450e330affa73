"""``ehc <service> dead-letters list|show|replay``: inspect and re-drive a service's parked records.

The same three commands for intake, deadlines and notifier (shared.dead_letters). ``list`` and
``show`` print the reason, the place and the state, never the content; ``show --original`` decrypts
the original record for an operator who needs it. ``replay`` republishes the original bytes to the
original topic; a held case is re-driven in order (the letter given and every later held record
of its case).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from sqlalchemy import Table

from shared.dead_letters import DeadLetterError, DeadLetters, Letter


def _summary(letter: Letter) -> dict[str, Any]:
    state = "held" if letter.pending else "rejected" if letter.kind == "rejected" else "released"
    return {"id": letter.id, "kind": letter.kind, "state": state, "consumer": letter.consumer,
            "at": letter.at.isoformat(), "reason": letter.reason, "attempts": letter.attempts,
            "held_behind": letter.held_behind, "case_key_sha256": letter.case_key_sha256,
            "original_topic": letter.topic, "original_partition": letter.partition,
            "original_offset": letter.offset, "original_size": letter.size}


def dead_letters_app(service: str, held_table: Callable[[], Table]) -> typer.Typer:
    app = typer.Typer(help=f"Records the {service} service parked: list, show, replay.", no_args_is_help=True)

    def run(action: Callable[[DeadLetters], Awaitable[int]]) -> None:
        from shared.db import create_engine_for, session_factory
        from shared.kafka import build_producer
        from shared.logging import configure_logging
        from shared.settings import Settings

        async def go() -> int:
            settings = Settings()
            configure_logging("WARNING", settings.logging.json_output)
            engine = create_engine_for(settings, service)
            producer = build_producer(settings.kafka, f"{service}-dead-letters")
            await producer.start()
            try:
                return await action(DeadLetters(service, settings, session_factory(engine), held_table(), producer))
            except DeadLetterError as exc:
                typer.echo(f"error: {exc}", err=True)
                return 1
            finally:
                await producer.stop()
                await engine.dispose()

        raise typer.Exit(asyncio.run(go()))

    @app.command("list")
    def list_(
        held_only: Annotated[bool, typer.Option("--held", help="Only records still held.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        """Every parked record within the retention, oldest first: id, state, reason, place."""

        async def action(dead: DeadLetters) -> int:
            for letter in await dead.letters():
                if held_only and not letter.pending:
                    continue
                row = _summary(letter)
                typer.echo(json.dumps(row) if as_json else
                           f"{row['id']}  {row['state']:8}  {row['at'][:19]}  {row['consumer']}  "
                           f"{row['original_topic']}[{row['original_partition']}]@{row['original_offset']}  "
                           f"{row['reason']}")
            return 0

        run(action)

    @app.command("show")
    def show(
        letter_id: Annotated[str, typer.Argument(help="The dead letter's id (dl-...).")],
        original: Annotated[bool, typer.Option("--original", help="Also decrypt the original record "
                                               "(personal data: only where you may see it).")] = False,
    ) -> None:
        """One parked record as JSON."""

        async def action(dead: DeadLetters) -> int:
            found = [x for x in await dead.letters() if x.id == letter_id]
            if not found:
                raise DeadLetterError(f"no such dead letter (or past its retention): {letter_id}")
            row = _summary(found[0])
            if original:
                record = dead.original(found[0])
                row["original"] = {
                    "key_base64": base64.b64encode(record.key).decode() if record.key is not None else None,
                    "value_base64": base64.b64encode(record.value).decode() if record.value is not None else None,
                    "headers": [[name, base64.b64encode(value).decode()] for name, value in record.headers]}
            typer.echo(json.dumps(row, indent=2))
            return 0

        run(action)

    @app.command("replay")
    def replay(
        letter_ids: Annotated[list[str], typer.Argument(help="Dead letter ids; a held case replays from there on.")],
    ) -> None:
        """Republish the original records to their topics (after the fix), in order."""

        async def action(dead: DeadLetters) -> int:
            for sent in await dead.replay(letter_ids):
                typer.echo(f"replayed {sent}")
            return 0

        run(action)

    return app
