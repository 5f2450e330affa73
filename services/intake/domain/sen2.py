"""The DfE SEN2 person-level return -> canonical case events (and the records the 20-week figures need).

Two inputs, one conversion: the XML return (streamed with defusedxml's parser, one Person at a
time, so memory stays flat for any number of persons) and the COLLECT "Blade" CSV export (nine
CSV files linked by ``<table>tableid`` keys, in a folder or a zip). Both are turned into the same
small element trees, so the same data gives the same events from either format.

Decisions (also in the report of issue 4):

- **One case per person**, ``case_id = opaque_case_id(key, "sen2/<LEA>", reference)`` where the
  reference is ``upn:<UPN>``, else ``uln:<ULN>``, else (UPNunknown) the normalised surname,
  forename and birth date. Reviews, ceasing and a second request then attach to the same case
  as the first plan; SEN2 hangs ActivePlans off a request, but the annual review cycle belongs
  to the child's plan. Limits: a child whose UPN first appears in a later return gets a new case
  id; the same child in a council's case-management feed has another case id (another source).
- **Event ids** are UUIDv5 over the source, the case id, a slot and the event type. The slot is
  the request's ReceivedDate (else its AssessmentOutcomeDate, else its position), or the review
  date for reviews: the same request in next year's return gives the same ids, so re-imports
  de-duplicate. A date corrected in a later return keeps its id (downstream keeps the first).
- **Week20 = 1** -> ``ehc.exception.recorded`` with exception E3, ``rule_ids ["plan.final"]``,
  on the ReceivedDate, and a reason saying SEN2 does not give the type. SEN2 says only that some
  exception to the 20-week limit applied; E3 is a placeholder the council can correct.
- **PhaseTransferDueDate** (2025+): 14/15 February -> ``kind school``, 30/31 March -> ``post16``,
  both with ``transfer_on`` 1 September of that year; any other date, for a person aged 16 or
  over on it -> ``post16_to_post16`` with ``transfer_on`` 5 months later (Regs 18(2)); otherwise
  no event (counted in ``notes``). ``PhaseTransferFinalDate`` -> ``ehc.plan.amended``.
- Not turned into events (no date in SEN2; counted in ``notes``): RequestOutcome/
  AssessmentOutcome H requests' request and decision events, Exported, TransferLA, mediation and
  tribunal flags, a review decision without its date or outcome.
- Names, birth dates, postcodes, UPNs are never copied into events. The birth date is only used
  to say whether the child was under 5 (``child_under_5``) and for the phase-transfer kind.
- Without RequestSource (returns before 2025) ``requested_by`` is left out, so the contract's
  default (parent) applies. Event ``time`` is the header's DateTime (Europe/London), else the
  reference date.
- A request converts whole or not at all: a missing ReceivedDate (unless H), a missing outcome
  date for Y/N/W, an unknown code, an impossible date or one outside 1900-2099, more than one
  Assessment/ActivePlans/NamedPlan give a Rejection of that request (its XML fragment or CSV
  rows) and the rest of the file goes on. A person without usable identity or without Requests
  is rejected whole. Elements outside any Person are counted in ``notes``, not dropped silently.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from pydantic import ValidationError

from services.intake.domain.case_ids import deterministic_event_id, opaque_case_id
from services.intake.domain.csv_rows import iter_csv_rows
from services.intake.domain.results import IntakeItem, Rejection, describe_safely
from services.intake.domain.values import (
    LONDON,
    add_months,
    add_years,
    parse_flag,
    parse_sen2_date,
    parse_sen2_datetime,
)
from shared.contracts import CaseEventEnvelope, build_case_event, utcnow

CHUNK_BYTES = 64 * 1024
MAX_ZIP_MEMBER_BYTES = 1 << 30

TAG_ALIASES = {"wpb": "wbp", "planwpb": "planwbp", "gendercurrent": "sex"}
REQUEST_SOURCES = {"1": "parent", "2": "school", "3": "health", "4": "social_care", "5": "other"}
OUTCOME_CODES = ("Y", "N", "A", "W", "H")
REVIEW_OUTCOMES = {"A": "amend", "C": "cease", "M": "maintain"}
WEEK20_EXCEPTION = "E3"
WEEK20_RULE_IDS = ["plan.final"]
WEEK20_REASON = "SEN2 Week20=1: an exception to the 20-week limit applied (type not given in SEN2)"
_UPN = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")

# COLLECT CSV export: table -> parent table (the nine files, linked by <table>tableid).
CSV_TABLES: dict[str, str | None] = {
    "sen2": None,
    "person": "sen2",
    "requests": "person",
    "assessment": "requests",
    "namedplan": "assessment",
    "plandetail": "namedplan",
    "activeplans": "requests",
    "placementdetail": "activeplans",
    "senneed": "activeplans",
}
CSV_REQUIRED = ("sen2", "person", "requests")
_CSV_META_SUFFIXES = ("tableid", "orderseqcolumn")
_CSV_META = {"nativeid", "sourceid"}


class Sen2FormatError(ValueError):
    """The input is not an SEN2 return that can be read at all (strict reading, or file-level)."""


# --- a small element tree, shared by both formats ----------------------------------------------

class Node:
    """An element: lower-case tag, text, children; where it came from (for rejections)."""

    __slots__ = ("tag", "text", "children", "start", "end", "line", "origin")

    def __init__(self, tag: str, text: str = "") -> None:
        self.tag = tag
        self.text = text
        self.children: list[Node] = []
        self.start = -1  # XML: byte offset of the start tag
        self.end = -1  # XML: byte offset of the end tag
        self.line = 0
        self.origin: tuple[str, int, bytes, bytes] | None = None  # CSV: table, line, header, row

    def child(self, tag: str) -> Node | None:
        for node in self.children:
            if node.tag == tag:
                return node
        return None

    def all(self, tag: str) -> list[Node]:
        return [node for node in self.children if node.tag == tag]

    def get(self, tag: str) -> str:
        """The stripped text of the first child with this tag ("" when absent)."""
        node = self.child(tag)
        return node.text.strip() if node is not None else ""

    def walk(self) -> Iterator[Node]:
        yield self
        for node in self.children:
            yield from node.walk()


@dataclass(frozen=True)
class Sen2Header:
    """The return's header: the collection year, the LA (LEA) and the census reference date."""

    collection: str | None
    year: int | None
    lea: str | None
    reference_date: date | None
    software_code: str | None = None
    release: str | None = None
    serial_no: str | None = None
    generated_at: datetime | None = None

    @property
    def source(self) -> str:
        return f"sen2/{self.lea}"

    @classmethod
    def from_node(cls, node: Node) -> Sen2Header:
        values: dict[str, str] = {}
        for item in node.walk():
            if not item.children and item.tag not in values:
                values[item.tag] = item.text.strip()
        year = values.get("year", "")
        lea = values.get("lea", "")
        return cls(
            collection=values.get("collection") or None,
            year=int(year) if re.fullmatch(r"[0-9]{4}", year) else None,
            lea=lea if re.fullmatch(r"[0-9]{3}", lea) else None,
            reference_date=_lenient_date(values.get("referencedate", "")),
            software_code=values.get("softwarecode") or None,
            release=values.get("release") or None,
            serial_no=values.get("serialno") or None,
            generated_at=_lenient_datetime(values.get("datetime", "")),
        )


@dataclass
class Sen2Counts:
    """Per-file counts: what was read, converted, rejected, and seen but not turned into events."""

    persons: int = 0
    persons_rejected: int = 0
    requests: int = 0
    requests_rejected: int = 0
    rejections: int = 0
    events: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    @property
    def events_total(self) -> int:
        return sum(self.events.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "persons": self.persons,
            "persons_rejected": self.persons_rejected,
            "requests": self.requests,
            "requests_rejected": self.requests_rejected,
            "rejections": self.rejections,
            "events_total": self.events_total,
            "events": dict(sorted(self.events.items())),
            "notes": dict(sorted(self.notes.items())),
        }


# --- units read from a file ------------------------------------------------------------------

@dataclass(slots=True)
class _HeaderUnit:
    node: Node


@dataclass(slots=True)
class _PersonUnit:
    node: Node
    index: int
    fragment: Callable[[Node], bytes]
    where: Callable[[Node], str]


@dataclass(slots=True)
class _NoteUnit:
    note: str


@dataclass(slots=True)
class _ErrorUnit:
    reason: str
    original: bytes
    location: str | None


_Unit: TypeAlias = _HeaderUnit | _PersonUnit | _NoteUnit | _ErrorUnit
_CONTAINERS = {"message": ("header", "persons", "person"), "persons": ("person",)}


class _NotSen2(Exception):
    pass


class _XmlTarget:
    """Builds one Person tree at a time from the parser's callbacks."""

    def __init__(self) -> None:
        self.expat: Any = None
        self.stack: list[Node] = []
        self.finished: list[Node] = []
        self.person_starts: list[int] = []
        self.last_person_end = 0
        self.header: Node | None = None
        self.ignored: list[str] = []
        self._tags: dict[str, str] = {}

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = self._tags.get(tag)
        if name is None:
            local = tag.rpartition("}")[2].lower()
            name = self._tags[tag] = TAG_ALIASES.get(local, local)
        node = Node(name)
        stack = self.stack
        if stack:
            stack[-1].children.append(node)
        elif name != "message":
            raise _NotSen2
        if name == "person" or name == "requests":
            node.start = self.expat.CurrentByteIndex
            node.line = self.expat.CurrentLineNumber
            if name == "person":
                self.person_starts.append(node.start)
        stack.append(node)

    def end(self, tag: str) -> None:
        node = self.stack.pop()
        name = node.tag
        if name == "person" or name == "requests":
            node.end = self.expat.CurrentByteIndex
            if name == "person":
                self.person_starts.pop()
                self.last_person_end = node.end
                if self.stack:
                    self.stack[-1].children.pop()  # done with it: memory stays flat
                self.finished.append(node)
        elif name == "header":
            self.header = node
        if self.stack and name not in _CONTAINERS.get(self.stack[-1].tag, (name,)):
            # e.g. a Requests outside any Person: say so rather than drop it silently
            self.stack[-1].children.pop()
            shown = name if re.fullmatch(r"[a-z0-9_]{1,40}", name) else "?"
            self.ignored.append(f"<{shown}> outside a Person: not read")

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text += text

    def close(self) -> None:
        return None

    def keep_from(self) -> int:
        """The first byte still needed: the start of the open person, or the end of the last one."""
        return self.person_starts[0] if self.person_starts else self.last_person_end


def _xml_units(stream: BinaryIO) -> Iterator[_Unit]:
    target = _XmlTarget()
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    target.expat = parser.parser
    buffer = bytearray()
    base = 0  # absolute offset of buffer[0]
    header_sent = False
    index = 0

    def fragment(node: Node) -> bytes:
        start = max(node.start - base, 0)
        close = buffer.find(b">", max(node.end - base, start))
        return bytes(buffer[start: len(buffer) if close < 0 else close + 1])

    def where(node: Node) -> str:
        return f"line {node.line}"

    while True:
        chunk = stream.read(CHUNK_BYTES)
        error: str | None = None
        try:
            if chunk:
                buffer += chunk
                parser.feed(chunk)
            else:
                parser.close()
        except ParseError as exc:
            error = f"malformed XML: {_expat_message(exc)}"
        except DefusedXmlException:
            error = "XML with a DTD or entity declarations is refused"
        except _NotSen2:
            error = "not an SEN2 return: the root element is not Message"
        if not header_sent and target.header is not None:
            header_sent = True
            yield _HeaderUnit(target.header)
        for note in target.ignored:
            yield _NoteUnit(note)
        target.ignored.clear()
        for node in target.finished:
            index += 1
            yield _PersonUnit(node, index, fragment, where)
        target.finished.clear()
        if error is not None:
            keep = target.keep_from()
            line = _error_line(target)
            rest = bytes(buffer[max(keep - base, 0):]) + stream.read()
            after = f" after person {index}" if index else ""
            yield _ErrorUnit(error, rest, f"line {line}{after}")
            return
        if not chunk:
            return
        keep = target.keep_from()
        if keep > base:
            del buffer[: keep - base]
            base = keep


def _expat_message(exc: ParseError) -> str:
    # "mismatched tag: line 5, column 3": expat's messages describe, they never quote the input
    return str(exc).split(":")[0].strip() or "parse error"


def _error_line(target: _XmlTarget) -> int:
    try:
        return int(target.expat.ErrorLineNumber or target.expat.CurrentLineNumber)
    except Exception:
        return 0


# --- the COLLECT CSV export ------------------------------------------------------------------

def _table_name(filename: str) -> str | None:
    stem = Path(filename).stem.lower()
    for table in CSV_TABLES:
        if stem == table or stem.endswith(("_" + table, "-" + table, " " + table)):
            return table
    return None


def _csv_openers(path: Path) -> dict[str, Callable[[], BinaryIO]]:
    """table -> a function opening its CSV file (from a folder or a zip)."""
    found: dict[str, Callable[[], BinaryIO]] = {}
    names: dict[str, str] = {}

    def add(table: str | None, name: str, opener: Callable[[], BinaryIO]) -> None:
        if table is None:
            return
        if table in found:
            raise Sen2FormatError(f"two files for the {table} table: {names[table]} and {name}")
        found[table] = opener
        names[table] = name

    if path.is_dir():
        for file in sorted(path.iterdir()):
            if file.is_file() and file.suffix.lower() == ".csv":
                add(_table_name(file.name), file.name, partial(_open_binary, file))
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.lower().endswith(".csv"):
                    continue
                if info.file_size > MAX_ZIP_MEMBER_BYTES:
                    raise Sen2FormatError(f"{info.filename} in the zip is larger than {MAX_ZIP_MEMBER_BYTES} bytes")
                data = archive.read(info)
                add(_table_name(info.filename), info.filename, partial(io.BytesIO, data))
    elif path.exists():
        raise Sen2FormatError(f"{path.name}: an SEN2 CSV export is a folder or a .zip of the nine CSV files")
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")
    missing = [t for t in CSV_REQUIRED if t not in found]
    if missing:
        raise Sen2FormatError(f"{path.name}: not an SEN2 CSV export: no " + ", ".join(f"{t}.csv" for t in missing))
    return found


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


def _csv_units(openers: dict[str, Callable[[], BinaryIO]]) -> Iterator[_Unit]:
    nodes: dict[str, dict[str, Node]] = {}
    order: dict[str, list[tuple[float, int, Node]]] = {}
    errors: list[_ErrorUnit] = []
    attached_to: dict[str, list[tuple[str, Node]]] = {}
    for table, parent in CSV_TABLES.items():
        nodes[table] = {}
        order[table] = []
        attached_to[table] = []
        if table not in openers:
            continue
        with openers[table]() as stream:
            rows = iter_csv_rows(stream)
            head = next(rows, None)
            if head is None or head.values is None:
                if table in CSV_REQUIRED:
                    raise Sen2FormatError(f"{table}.csv has no readable header line")
                continue
            columns = [c.strip().lower() for c in head.values]
            own_key, parent_key = f"{table}tableid", f"{parent}tableid" if parent else None
            if own_key not in columns and table != "sen2":
                raise Sen2FormatError(f"{table}.csv has no {own_key} column")
            if parent_key is not None and parent_key not in columns and parent != "sen2":
                raise Sen2FormatError(f"{table}.csv has no {parent_key} column")
            for row in rows:
                location = f"{table}.csv line {row.line}"
                if row.values is None or len(row.values) > len(columns):
                    reason = row.problem or f"row has {len(row.values or [])} fields, the header has {len(columns)}"
                    errors.append(_ErrorUnit(reason, head.raw + row.raw, location))
                    continue
                values = dict(zip(columns, (v.strip() for v in row.values), strict=False))
                node = Node(table)
                node.line = row.line
                node.origin = (table, row.line, head.raw, row.raw)
                for column, text in values.items():
                    if column.endswith(_CSV_META_SUFFIXES) or column in _CSV_META:
                        continue
                    name = TAG_ALIASES.get(column, column)
                    node.children.append(Node(name, text))
                own_id = values.get(own_key, "") or f"#{row.line}"
                if own_id in nodes[table]:
                    errors.append(_ErrorUnit(f"{table}.csv repeats a {own_key}", head.raw + row.raw, location))
                    continue
                nodes[table][own_id] = node
                sequence = values.get(f"{table}orderseqcolumn", "")
                order[table].append((float(sequence) if _is_number(sequence) else float("inf"), row.line, node))
                if parent is not None and parent != "sen2":
                    attached_to[table].append((values.get(parent_key or "", ""), node))
    # children in their order (orderseqcolumn, else file order), under their parent
    for table, parent in CSV_TABLES.items():
        if parent is None or parent == "sen2":
            continue
        rank = {id(node): (seq, line) for seq, line, node in order[table]}
        for parent_id, node in sorted(attached_to[table], key=lambda pair: rank[id(pair[1])]):
            owner = nodes[parent].get(parent_id)
            if owner is None:
                table_name, line, head_raw, raw = node.origin or (table, 0, b"", b"")
                errors.append(_ErrorUnit(f"{table}.csv row refers to no {parent} row ({parent}tableid not found)",
                                         head_raw + raw, f"{table_name}.csv line {line}"))
                continue
            owner.children.append(node)
    header = Node("header")
    sen2_rows = sorted(order["sen2"], key=lambda item: (item[0], item[1]))
    if sen2_rows:
        header.children = sen2_rows[0][2].children
    yield _HeaderUnit(header)
    persons = sorted(order["person"], key=lambda item: (item[0], item[1]))
    for index, (_, _, person) in enumerate(persons, start=1):
        yield _PersonUnit(person, index, _csv_fragment, _csv_where)
    yield from errors


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_fragment(node: Node) -> bytes:
    parts = []
    for item in node.walk():
        if item.origin is not None:
            table, line, head, raw = item.origin
            parts.append(f"# {table}.csv line {line}\n".encode() + head + raw)
    return b"".join(parts)


def _csv_where(node: Node) -> str:
    return f"{node.origin[0]}.csv line {node.origin[1]}" if node.origin else "csv"


# --- conversion -----------------------------------------------------------------------------

class _Problem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _lenient_date(text: str) -> date | None:
    try:
        return parse_sen2_date(text) if text.strip() else None
    except ValueError:
        return None


def _lenient_datetime(text: str) -> datetime | None:
    try:
        return parse_sen2_datetime(text) if text.strip() else None
    except ValueError:
        return None


def _date(node: Node, tag: str, label: str) -> date | None:
    text = node.get(tag)
    if not text:
        return None
    try:
        return parse_sen2_date(text)
    except ValueError as exc:
        raise _Problem(f"field {label} {exc}") from None


def _code(node: Node, tag: str, label: str, allowed: tuple[str, ...]) -> str:
    text = node.get(tag).upper()
    if text and text not in allowed:
        raise _Problem(f"field {label} has an unknown code (expected {', '.join(allowed)})")
    return text


def _flag(node: Node, tag: str, label: str) -> bool:
    text = node.get(tag)
    if not text:
        return False
    try:
        return parse_flag(text)
    except ValueError as exc:
        raise _Problem(f"field {label} {exc}") from None


def _person_reference(person: Node) -> str:
    """What identifies the person within the LA (hashed into the case id; never published)."""
    upn = person.get("upn").upper()
    if upn:
        if len(upn) != 13:
            raise _Problem("field UPN is not 13 characters")
        if not _UPN.match(upn):
            raise _Problem("field UPN is not a letter, 11 digits and a check character")
        return "upn:" + upn
    uln = person.get("uniquelearnernumber")
    if uln:
        if not re.fullmatch(r"[0-9]{10}", uln):
            raise _Problem("field UniqueLearnerNumber is not 10 digits")
        return "uln:" + uln
    surname, forename, birth = person.get("surname"), person.get("forename"), person.get("personbirthdate")
    if surname and forename and birth:
        born = _lenient_date(birth)
        if born is None:
            raise _Problem("field PersonBirthDate is not a valid date (needed: the person has no UPN or ULN)")
        names = "\x1f".join(" ".join(n.split()).casefold() for n in (surname, forename))
        return f"name:{names}\x1f{born.isoformat()}"
    raise _Problem("person has no UPN, ULN, or surname, forename and birth date to identify them")


def _under_5(born: date | None, on: date) -> bool | None:
    return None if born is None else on < add_years(born, 5)


def infer_phase_transfer(due: date, born: date | None) -> tuple[str, date] | None:
    """(kind, transfer_on) from SEN2's PhaseTransferDueDate, or None when it cannot be told."""
    if (due.month, due.day) in ((2, 14), (2, 15)):
        return "school", date(due.year, 9, 1)
    if (due.month, due.day) in ((3, 30), (3, 31)):
        return "post16", date(due.year, 9, 1)
    if born is not None and add_years(born, 16) <= due:
        return "post16_to_post16", add_months(due, 5)
    return None


class _Converter:
    def __init__(self, *, case_id_key: bytes, counts: Sen2Counts, lea: str | None) -> None:
        if not case_id_key:
            raise ValueError("the case id key is empty: configure a secret key of at least 16 random bytes")
        self.case_id_key = case_id_key
        self.counts = counts
        self.lea_override = lea
        self.header: Sen2Header | None = None
        self.source = f"sen2/{lea}" if lea else ""
        self.time: datetime = utcnow()

    def set_header(self, header: Sen2Header) -> None:
        self.header = header
        lea = self.lea_override or header.lea
        self.source = f"sen2/{lea}" if lea else ""
        if header.generated_at is not None:
            self.time = header.generated_at
        elif header.reference_date is not None:
            self.time = datetime.combine(header.reference_date, time(0), LONDON)

    def person(self, unit: _PersonUnit) -> list[IntakeItem]:
        counts = self.counts
        counts.persons += 1
        person = unit.node
        here = f"person {unit.index}"
        requests = person.all("requests")
        counts.requests += len(requests)
        try:
            if not self.source:
                raise _Problem("the return's header has no LEA (a 3-digit DfE LA number) before this person")
            reference = _person_reference(person)
            if not requests:
                raise _Problem("person has no Requests")
        except _Problem as problem:
            counts.persons_rejected += 1
            counts.requests_rejected += len(requests)
            return [Rejection(problem.reason, unit.fragment(person), f"{here} ({unit.where(person)})")]
        case_id = opaque_case_id(self.case_id_key, self.source, reference)
        born = _lenient_date(person.get("personbirthdate"))
        items: list[IntakeItem] = []
        for number, request in enumerate(requests, start=1):
            try:
                items.extend(self._request(request, number, case_id, born))
            except _Problem as problem:
                counts.requests_rejected += 1
                location = f"{here} / request {number} ({unit.where(request)})"
                items.append(Rejection(problem.reason, unit.fragment(request), location))
        return items

    def _request(self, request: Node, number: int, case_id: str, born: date | None) -> list[CaseEventEnvelope]:
        notes = self.counts.notes
        # Read and check everything first: a request converts whole or not at all.
        received = _date(request, "receiveddate", "ReceivedDate")
        outcome = _code(request, "requestoutcome", "RequestOutcome", OUTCOME_CODES)
        outcome_on = _date(request, "requestoutcomedate", "RequestOutcomeDate")
        source_code = request.get("requestsource")
        requested_by = REQUEST_SOURCES.get(source_code) if source_code else None
        if source_code and requested_by is None:
            raise _Problem("field RequestSource has an unknown code (expected 1 to 5)")
        if not outcome:
            raise _Problem("field RequestOutcome is missing")
        if outcome != "H" and received is None:
            raise _Problem("field ReceivedDate is missing")
        if outcome in ("Y", "N", "W") and outcome_on is None:
            raise _Problem(f"field RequestOutcomeDate is missing (RequestOutcome is {outcome})")
        for tag, label in (("assessment", "Assessment"), ("activeplans", "ActivePlans")):
            if len(request.all(tag)) > 1:
                raise _Problem(f"request has more than one {label}")
        assessment = request.child("assessment")
        a_outcome, a_on, week20, cease_on = "", None, False, None
        if assessment is not None:
            a_outcome = _code(assessment, "assessmentoutcome", "AssessmentOutcome", OUTCOME_CODES)
            a_on = _date(assessment, "assessmentoutcomedate", "AssessmentOutcomeDate")
            week20 = _flag(assessment, "week20", "Week20")
            if a_outcome in ("Y", "N", "W") and a_on is None:
                raise _Problem(f"field AssessmentOutcomeDate is missing (AssessmentOutcome is {a_outcome})")
            if len(assessment.all("namedplan")) > 1:
                raise _Problem("assessment has more than one NamedPlan")
            plan = assessment.child("namedplan")
            if plan is not None:
                cease_on = _date(plan, "ceasedate", "CeaseDate")
        active = request.child("activeplans")
        meeting_on = decided_on = due_on = final_on = None
        review = ""
        if active is not None:
            meeting_on = _date(active, "reviewmeeting", "ReviewMeeting")
            decided_on = _date(active, "lastreview", "LastReview")
            review = _code(active, "reviewoutcome", "ReviewOutcome", tuple(REVIEW_OUTCOMES))
            due_on = _date(active, "phasetransferduedate", "PhaseTransferDueDate")
            final_on = _date(active, "phasetransferfinaldate", "PhaseTransferFinalDate")

        slot = (f"request:{received.isoformat()}" if received else
                f"issued:{a_on.isoformat()}" if a_on else f"request#{number}")
        events: list[CaseEventEnvelope] = []

        def emit(type_: str, occurred_on: date, key: str, **data: Any) -> None:
            event_id = deterministic_event_id(self.source, case_id, key, type_)
            try:
                events.append(build_case_event(type_, id=event_id, source=self.source, case_id=case_id,
                                               time=self.time, occurred_on=occurred_on, **data))
            except ValidationError as exc:  # pragma: no cover - the values were checked above
                raise _Problem(describe_safely(exc, prefix=f"{type_}: ")) from None

        if outcome == "H":
            notes["historical request (RequestOutcome H): no request or decision events"] += 1
        else:
            assert received is not None
            by = {"requested_by": requested_by} if requested_by else {}
            emit("ehc.request.received", received, slot, route="request", **by)
            if outcome in ("Y", "N"):
                assert outcome_on is not None
                emit("ehc.assessment.decided", outcome_on, slot,
                     decision="assess" if outcome == "Y" else "refuse", notice_sent_on=outcome_on)
            elif outcome == "W":
                assert outcome_on is not None
                emit("ehc.case.closed", outcome_on, slot, reason="request_withdrawn")
        if request.get("exported"):
            notes["Exported (moved away during the assessment): no date in SEN2"] += 1

        if a_outcome in ("Y", "H") and a_on is not None:
            plan_id = "p-" + deterministic_event_id(self.source, case_id, slot, "plan").replace("-", "")[:24]
            emit("ehc.plan.issued", a_on, slot, plan_id=plan_id, child_under_5=_under_5(born, a_on))
        elif a_outcome == "H":
            notes["historical assessment without AssessmentOutcomeDate: no plan.issued"] += 1
        elif a_outcome == "N":
            assert a_on is not None
            emit("ehc.plan.not_issued", a_on, slot, notice_sent_on=a_on)
        elif a_outcome == "W":
            assert a_on is not None
            emit("ehc.case.closed", a_on, slot + "/assessment", reason="request_withdrawn")
        if week20:
            on = received or a_on
            if on is None:
                notes["Week20 = 1 without any date: no exception event"] += 1
            else:
                emit("ehc.exception.recorded", on, slot, exception=WEEK20_EXCEPTION,
                     rule_ids=WEEK20_RULE_IDS, reason=WEEK20_REASON)
        if cease_on is not None:
            emit("ehc.plan.ceased", cease_on, slot, notice_sent_on=cease_on)

        if active is not None:
            if meeting_on is not None:
                emit("ehc.review.meeting_held", meeting_on, f"review:{meeting_on.isoformat()}")
            if review and decided_on is not None:
                emit("ehc.review.decision_issued", decided_on, f"review-decision:{decided_on.isoformat()}",
                     outcome=REVIEW_OUTCOMES[review], child_under_5=_under_5(born, decided_on))
            elif review or decided_on is not None:
                notes["review decision without both LastReview and ReviewOutcome"] += 1
            if due_on is not None:
                inferred = infer_phase_transfer(due_on, born)
                if inferred is None:
                    notes["PhaseTransferDueDate whose transfer kind cannot be inferred"] += 1
                else:
                    kind, transfer_on = inferred
                    reference = self.header.reference_date if self.header else None
                    planned_on = min(due_on, reference) if reference else due_on
                    emit("ehc.phase_transfer.planned", planned_on, f"phase-transfer:{due_on.isoformat()}",
                         transfer_on=transfer_on, kind=kind)
            if final_on is not None:
                emit("ehc.plan.amended", final_on, f"phase-transfer-final:{final_on.isoformat()}")
            if active.get("transferla"):
                notes["TransferLA (plan transferred in): no transfer date in SEN2"] += 1
        return events


class Sen2Import(Iterator[IntakeItem]):
    """An iterator of the items an SEN2 return implies, with its header and counts as it goes.

    ``header`` is set once the header has been read; ``counts`` is complete once the iterator is
    exhausted. Content problems never raise: they are Rejections (a malformed XML file ends with
    one Rejection holding the unread rest of the file).
    """

    def __init__(self, units: Callable[[], Iterator[_Unit]], *, case_id_key: bytes, lea: str | None = None) -> None:
        self.header: Sen2Header | None = None
        self.counts = Sen2Counts()
        self.stopped: str | None = None  # why and where the XML stopped being readable (the rest was not read)
        self._converter = _Converter(case_id_key=case_id_key, counts=self.counts, lea=lea)
        self._items = self._run(units)

    def __iter__(self) -> Sen2Import:
        return self

    def __next__(self) -> IntakeItem:
        return next(self._items)

    def _run(self, units: Callable[[], Iterator[_Unit]]) -> Iterator[IntakeItem]:
        counts = self.counts
        for unit in units():
            if isinstance(unit, _HeaderUnit):
                self.header = Sen2Header.from_node(unit.node)
                self._converter.set_header(self.header)
                continue
            if isinstance(unit, _NoteUnit):
                counts.notes[unit.note] += 1
                continue
            if isinstance(unit, _ErrorUnit):
                reason = unit.reason
                if unit.location and unit.location.startswith("line "):  # the XML stopped here
                    self.stopped = f"{reason} at {unit.location}"
                    reason += "; the rest of the file was not read"
                items: list[IntakeItem] = [Rejection(reason, unit.original, unit.location)]
            else:
                items = self._converter.person(unit)
            for item in items:
                if isinstance(item, Rejection):
                    counts.rejections += 1
                else:
                    counts.events[item.type] += 1  # type: ignore[union-attr]  # every envelope has a type
            yield from items


PathOrStream: TypeAlias = str | os.PathLike[str] | BinaryIO | bytes


def iter_sen2_xml(stream_or_path: PathOrStream, *, case_id_key: bytes, lea: str | None = None) -> Sen2Import:
    """The canonical events of an SEN2 XML return (a path, a binary stream or bytes).

    ``lea`` overrides the header's LEA. Raises ``FileNotFoundError`` for a missing file.
    """
    return Sen2Import(_xml_opener(stream_or_path), case_id_key=case_id_key, lea=lea)


def iter_sen2_csv(path: str | os.PathLike[str], *, case_id_key: bytes, lea: str | None = None) -> Sen2Import:
    """The canonical events of an SEN2 COLLECT CSV export (a folder or a zip of the nine files).

    Raises ``FileNotFoundError`` or :class:`Sen2FormatError` when the export cannot be opened.
    """
    folder = Path(path)
    openers = _csv_openers(folder)
    return Sen2Import(lambda: _csv_units(openers), case_id_key=case_id_key, lea=lea)


def iter_sen2(path: str | os.PathLike[str], *, case_id_key: bytes, lea: str | None = None) -> Sen2Import:
    """Either format: a folder or a zip is the CSV export, anything else the XML return."""
    target = Path(path)
    if target.is_dir() or (target.is_file() and zipfile.is_zipfile(target)):
        return iter_sen2_csv(target, case_id_key=case_id_key, lea=lea)
    return iter_sen2_xml(target, case_id_key=case_id_key, lea=lea)


def _xml_opener(stream_or_path: PathOrStream) -> Callable[[], Iterator[_Unit]]:
    if isinstance(stream_or_path, bytes):
        data = stream_or_path
        return lambda: _xml_units(io.BytesIO(data))
    if isinstance(stream_or_path, str | os.PathLike):
        path = Path(stream_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")

        def from_path() -> Iterator[_Unit]:
            with path.open("rb") as stream:
                yield from _xml_units(stream)

        return from_path
    stream = stream_or_path
    return lambda: _xml_units(stream)


# --- records for the 20-week figures ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """What the DfE 20-week figure needs of one request's assessment (read leniently)."""

    received_on: date | None
    outcome: str
    outcome_on: date | None
    week20: bool


def _assessment_records(person: Node) -> Iterator[AssessmentRecord]:
    for request in person.all("requests"):
        assessment = request.child("assessment")
        if assessment is None:
            continue
        try:
            week20 = parse_flag(assessment.get("week20") or "0")
        except ValueError:
            week20 = False
        yield AssessmentRecord(
            received_on=_lenient_date(request.get("receiveddate")),
            outcome=assessment.get("assessmentoutcome").upper(),
            outcome_on=_lenient_date(assessment.get("assessmentoutcomedate")),
            week20=week20,
        )


def read_assessment_records(path: str | os.PathLike[str]) -> tuple[Sen2Header | None, list[AssessmentRecord]]:
    """Every assessment of an SEN2 return (either format), strictly: a malformed file raises
    :class:`Sen2FormatError` (figures from part of a file would be wrong)."""
    target = Path(path)
    if target.is_dir() or (target.is_file() and zipfile.is_zipfile(target)):
        openers = _csv_openers(target)
        units: Iterator[_Unit] = _csv_units(openers)
    else:
        units = _xml_opener(target)()
    header: Sen2Header | None = None
    records: list[AssessmentRecord] = []
    persons = 0
    for unit in units:
        if isinstance(unit, _HeaderUnit):
            header = Sen2Header.from_node(unit.node)
        elif isinstance(unit, _PersonUnit):
            persons += 1
            records.extend(_assessment_records(unit.node))
        elif isinstance(unit, _NoteUnit):
            continue
        elif unit.location and ".csv" in unit.location:
            continue  # a broken CSV row: the other rows still count (the reason is in the import)
        else:
            raise Sen2FormatError(f"{target.name}: {unit.reason} ({unit.location})")
    if header is None and persons == 0:
        raise Sen2FormatError(f"{target.name}: not an SEN2 return (no header and no persons)")
    return header, records
