"""The fault tests' own Kafka broker and PostgreSQL cluster, which they stop and start at will.

They run beside the shared pair the rest of the suite uses, never instead of it: other ports and
another state directory (``shared.local_infra.instance``). Ports: ``EHC_FAULTS_KAFKA_PORT`` and
``EHC_FAULTS_PG_PORT`` if set, else the shared pair's ports plus 100 when free, else free ports.
State: ``EHC_FAULTS_STATE_DIR``, else ``faults/`` in the shared pair's state directory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared import local_infra
from shared.local_infra import kafka as kafka_infra
from shared.local_infra import port_answers
from shared.local_infra import postgres as pg_infra
from tests.conftest import free_port


def _free_pair(preferred: int) -> int:
    """A port whose next port is free too (the broker's controller listens there)."""
    candidate = preferred
    for _ in range(50):
        if not port_answers(candidate) and not port_answers(candidate + 1):
            return candidate
        candidate = free_port()
    raise RuntimeError("no two consecutive free ports for the fault tests' Kafka broker")


def _free(preferred: int) -> int:
    return preferred if not port_answers(preferred) else free_port()


@dataclass(frozen=True)
class FaultInfra:
    kafka_port: int
    pg_port: int
    state_dir: Path

    @classmethod
    def from_environment(cls) -> FaultInfra:
        kafka = os.environ.get("EHC_FAULTS_KAFKA_PORT")
        pg = os.environ.get("EHC_FAULTS_PG_PORT")
        state = os.environ.get("EHC_FAULTS_STATE_DIR")
        return cls(
            kafka_port=int(kafka) if kafka else _free_pair(kafka_infra.port() + 100),
            pg_port=int(pg) if pg else _free(pg_infra.port() + 100),
            state_dir=Path(state) if state else local_infra.state_root() / "faults",
        )

    @contextmanager
    def here(self) -> Iterator[None]:
        with local_infra.instance(kafka_port=self.kafka_port, pg_port=self.pg_port, state_dir=self.state_dir):
            yield

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        with self.here():
            return pg_infra.database_url()

    @property
    def dsn(self) -> str:
        with self.here():
            return pg_infra.dsn()

    async def start_kafka(self) -> float:
        """Start the broker and wait until it answers; the seconds it took."""
        t0 = time.monotonic()
        with self.here():
            await asyncio.to_thread(kafka_infra.start)
            # by address, not by pid: a JVM just launched on a busy machine can fail the pid check
            # (its command line not yet readable) although it is starting
            await kafka_infra.wait_ready(120, bootstrap=self.bootstrap)
        return time.monotonic() - t0

    async def stop_kafka(self) -> None:
        with self.here():
            await asyncio.to_thread(kafka_infra.stop)

    async def start_postgres(self) -> float:
        t0 = time.monotonic()
        with self.here():
            await asyncio.to_thread(pg_infra.start)
            await pg_infra.wait_ready(60)
        return time.monotonic() - t0

    async def stop_postgres(self) -> None:
        with self.here():
            await asyncio.to_thread(pg_infra.stop)
