"""Kafka topic names (DESIGN §2). The only place they are spelled out.

Every topic is keyed by ``case_id`` so that one case's events stay in order on one partition
and replicas of a service split the partitions within one consumer group.
"""

from __future__ import annotations

from dataclasses import dataclass

CASE_EVENTS = "ehc.case-events"
DEADLINE_EVENTS = "ehc.deadline-events"
NOTIFICATION_EVENTS = "ehc.notification-events"
CONTACTS = "ehc.contacts"
# Each service parks what it cannot decode or handle on its own dead-letter topic (original bytes
# encrypted, headers, reason, time; shape: shared/contracts/dead_letter.py), kept DEAD_LETTER_RETENTION.
INTAKE_DEAD_LETTER = "ehc.intake.dead-letter"
DEADLINES_DEAD_LETTER = "ehc.deadlines.dead-letter"
NOTIFIER_DEAD_LETTER = "ehc.notifier.dead-letter"
DEAD_LETTER_TOPICS = {"intake": INTAKE_DEAD_LETTER, "deadlines": DEADLINES_DEAD_LETTER,
                      "notifier": NOTIFIER_DEAD_LETTER}
DEAD_LETTER_RETENTION_DAYS = 30  # the default of EHC_DEAD_LETTERS__RETENTION_DAYS
# A council's own case-management topic, mapped by intake; the name is configuration.
INTAKE_CANONICAL = "ehc.intake.canonical"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None  # None: broker default; -1: keep forever

    def config(self) -> dict[str, str]:
        cfg: dict[str, str] = {}
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


def topic_specs(prefix: str = "", partitions: int = 6,
                dead_letter_retention_days: int = DEAD_LETTER_RETENTION_DAYS) -> list[TopicSpec]:
    """The topics of DESIGN §2. ``prefix`` isolates test runs on one broker."""
    dead_letter_ms = dead_letter_retention_days * 24 * 3600 * 1000
    return [
        # case events are the system of record for the deadlines service's rebuild: keep forever
        TopicSpec(prefix + CASE_EVENTS, partitions, retention_ms=-1),
        TopicSpec(prefix + DEADLINE_EVENTS, partitions),
        TopicSpec(prefix + NOTIFICATION_EVENTS, partitions),
        TopicSpec(prefix + CONTACTS, partitions, compacted=True),
        # dead letters may hold personal data (encrypted): kept long enough to re-drive, then gone
        *(TopicSpec(prefix + name, partitions, retention_ms=dead_letter_ms) for name in DEAD_LETTER_TOPICS.values()),
        TopicSpec(prefix + INTAKE_CANONICAL, partitions),
    ]


ALL_TOPICS = [CASE_EVENTS, DEADLINE_EVENTS, NOTIFICATION_EVENTS, CONTACTS, INTAKE_DEAD_LETTER, DEADLINES_DEAD_LETTER,
              NOTIFIER_DEAD_LETTER, INTAKE_CANONICAL]
