"""What the fault tests send: synthetic cases in progress (``services.deadlines.domain.synthetic``),
each moved in time so that its latest events happened today or yesterday (so its milestones are
news to the family, not history the notifier records and never sends), as canonical CloudEvents
for intake's canonical topic, each with its family's contact details (``ehc.contacts.updated``,
sent through intake ahead of the case's first event), and poison records.

No real person is in them: the mobile numbers are from Ofcom's drama range (07700 900000-900999).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.deadlines.adapters.records import record_from_event
from services.deadlines.domain.events import CaseEventRecord
from services.deadlines.domain.synthetic import case_in_progress
from shared.contracts import Contact, ContactsData, ContactsUpdated, parse_case_event

SOURCE = "cms/synthetic/faults"
DRAMA_NUMBERS = 1000  # 07700 900000 to 07700 900999


@dataclass
class Case:
    case_id: str
    events: list[bytes]  # canonical case events, in the order the council's system recorded them
    contacts: bytes  # ehc.contacts.updated for the case's family
    phone: str
    consent: bool

    @property
    def key(self) -> bytes:
        return self.case_id.encode()

    def records(self) -> list[CaseEventRecord]:
        """The engine's input for these events, read through the contracts as `ehc deadlines compute` does."""
        return [record_from_event(parse_case_event(raw)) for raw in self.events]


@dataclass
class Workload:
    cases: list[Case]
    first_number: int = 0
    sent: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value) handed to intake so far

    @property
    def event_ids(self) -> set[str]:
        return {json.loads(raw)["id"] for c in self.cases for raw in c.events}

    def by_case(self) -> dict[str, Case]:
        return {c.case_id: c for c in self.cases}

    def stream(self) -> list[tuple[bytes, bytes]]:
        """Every message for intake, cases interleaved as a council's system would record them
        (each case's contacts first, then its events in order)."""
        queues = [[c.contacts, *c.events] for c in self.cases]
        out: list[tuple[bytes, bytes]] = []
        keys = [c.key for c in self.cases]
        while any(queues):
            for key, queue in zip(keys, queues, strict=True):
                if queue:
                    out.append((key, queue.pop(0)))
        return out


def mobile(n: int) -> str:
    return f"07700 {900000 + n % DRAMA_NUMBERS:06d}"


def make_workload(tag: str, cases: int, seed: int, today: date, first_number: int = 0,
                  no_consent_every: int = 8) -> Workload:
    """``cases`` cases in progress on ``today``, each with its latest event today or yesterday; every
    ``no_consent_every``-th family has not consented."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    made = []
    for n in range(cases):
        case_id = f"{tag}-case-{n:04d}"
        history = recent(case_in_progress(case_id, rng, today), today - timedelta(days=rng.randint(0, 1)))
        consent = n % no_consent_every != no_consent_every - 1
        phone = mobile(first_number + n)
        contacts = ContactsUpdated(
            id=f"{case_id}-contacts", source=SOURCE, subject=case_id, time=now,
            data=ContactsData(contacts=[Contact(role="parent", name="Parent", phone=phone, channel="sms",
                                                consent=consent)]),
        ).to_json()
        made.append(Case(case_id, [canonical(r, now) for r in history], contacts, phone, consent))
    return Workload(made, first_number)


def recent(history: list[CaseEventRecord], last_day: date) -> list[CaseEventRecord]:
    """The same case moved later in time, every date by the same number of days, so that its latest
    event happened on ``last_day``. A generated case starts up to 400 days ago and is cut at today,
    so most of its milestones would be weeks or months old: history the notifier records as
    ``historical`` and never texts (``policy.is_historical``), which would leave the exactly-once
    check of family texts almost nothing to check."""
    shift = last_day - max(r.occurred_on for r in history)

    def moved(value: Any) -> Any:
        return value + shift if isinstance(value, date) else value

    return [replace(r, occurred_on=r.occurred_on + shift, recorded_at=r.recorded_at + shift,
                    data={k: moved(v) for k, v in r.data.items()}) for r in history]


def canonical(record: CaseEventRecord, now: datetime) -> bytes:
    """A generated record as the canonical CloudEvent a council's adapter publishes."""
    data: dict[str, Any] = {"occurred_on": record.occurred_on.isoformat()}
    data.update({k: v.isoformat() if isinstance(v, date) else v for k, v in record.data.items()})
    event = {"specversion": "1.0", "id": record.id, "source": SOURCE, "type": record.type,
             "subject": record.case_id, "time": min(record.recorded_at, now).isoformat(),
             "datacontenttype": "application/json", "data": data}
    raw = json.dumps(event).encode()
    parse_case_event(raw)  # the generator only makes valid events: fail here, not in the services
    return raw


def chunks(items: list[Any], parts: int) -> Iterator[list[Any]]:
    size = -(-len(items) // parts)
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- poison -----------------------------------------------------------------------------------

def poison_records(kind_of_topic: str) -> dict[str, bytes]:
    """Records no service can use, for one kind of input topic: bytes that are not JSON, JSON
    nested deeper than any parser's recursion limit, invalid UTF-8, and valid JSON that is not a
    valid message of the topic (shaped enough like one to get past a quick look)."""
    invalid = {
        "case-event": {"specversion": "1.0", "id": "poison-1", "source": SOURCE, "type": "ehc.case.assigned",
                       "subject": "poison-case", "time": "2026-01-05T10:00:00Z", "data": {"caseworker_id": 7}},
        "deadline-event": {"specversion": "1.0", "id": "poison-2", "source": "ehc/deadlines",
                           "type": "deadline.breached", "subject": "poison-case", "time": "2026-01-05T10:00:00Z",
                           "data": {"deadline_id": "poison-case:plan.final:1", "due_on": "not a date"}},
        "contacts": {"specversion": "1.0", "id": "poison-3", "source": SOURCE, "type": "ehc.contacts.updated",
                     "subject": "poison-case", "time": "2026-01-05T10:00:00Z",
                     "data": {"contacts": [{"phone": "no digits", "consent": "maybe"}]}},
        "caseflow": {"msg_id": "CF-POISON", "case_ref": "CF/POISON/1", "status": "NOT_A_STATUS",
                     "status_date": "31/02/2026", "recorded_at": "yesterday"},
    }[kind_of_topic]
    depth = 100_000
    return {
        "undecodable": b"\x00\x01\x02 \x9f\x92\x96 this is not JSON \xff",
        "deep_nesting": b"[" * depth + b"]" * depth,
        "invalid_utf8": b'{"specversion": "1.0", "id": "\xff\xfe\xfd", "type": "\xc3\x28"}',
        "invalid_event": json.dumps(invalid).encode(),
    }
