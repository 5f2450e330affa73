"""Importing a file: its converted items are staged in batches, and each batch is relayed to Kafka
(acks=all) before the next one is read, so an interrupted import has published every batch it
counted and a repeated import publishes nothing new (de-duplication by source and event id)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

from services.intake.service_layer.handlers import Converted, IntakeOutcome, IntakeService, RawInput
from shared.messaging.outbox import OutboxRelay

BatchDone = Callable[[IntakeOutcome, int], None]


async def import_items(
    service: IntakeService,
    relay: OutboxRelay,
    items: Iterable[Converted],
    *,
    input_source: str,
    batch_size: int = 500,
    on_batch: BatchDone | None = None,
    total: IntakeOutcome | None = None,
) -> IntakeOutcome:
    """Stage and publish ``items`` (case events, contact updates, rejections) in batches.

    ``on_batch(total so far, items in this batch)`` is called after each batch is in Kafka.
    Returns the totals (without the list of event ids, which a large file would make long), also
    added up in ``total`` when given, so a caller still has them if a batch fails."""
    total = total if total is not None else IntakeOutcome()
    origin = RawInput(value=b"", channel="file", input_source=input_source)
    iterator = iter(items)
    while batch := list(islice(iterator, batch_size)):
        outcome = await service.stage([(origin, item) for item in batch])
        await relay.drain()
        total.add(outcome, keep_ids=False)
        if on_batch is not None:
            on_batch(total, len(batch))
    return total
