"""Declarative per-source mappings: a council's own message shape -> canonical case events.

A mapping is a YAML file validated by :class:`SourceMapping`; a bad file fails at load time with
every problem named (``MappingError``). At run time :meth:`SourceMapping.convert` never raises for
bad input: a message that is not JSON, misses a field, has an unknown code or an impossible date
gives exactly one :class:`~services.intake.domain.results.Rejection` with a one-line reason that
names fields, never values.

Shape of a mapping (``mode: mapped``)::

    name: caseflow                    # the mapping's name (settings refer to it)
    source: cms/caseflow/example      # CloudEvents ``source`` of the events produced
    date_formats: ["%d/%m/%Y"]        # default formats of date fields ("iso" = ISO 8601)
    kind: {from: status, codes: {REQ_RCVD: ehc.request.received, ...}}
    case_id: {from: case_ref, hash: true}      # hash: false only for references already opaque
    event_id: {from: msg_id}                   # or {derive: [status, status_date]}
    time: {from: recorded_at}                  # or: now
    defaults: {occurred_on: status_date}       # applied to every type that has the field
    events:
      ehc.assessment.decided:
        decision: {from: status, codes: {DEC_ASSESS: assess, DEC_REFUSE: refuse}}
        notice_sent_on: {from: notice_date, formats: ["%d/%m/%Y"]}
    contacts:                                  # -> a separate ContactsUpdated for ehc.contacts
      people:
        - {name: parent_name, email: parent_email, phone: parent_mobile,
           consent: {from: consent, type: bool}}

A field spec is a dotted path (``activity.details.plan_ref``; ``$key`` is the Kafka message key)
or a mapping with ``from`` or ``const``, and optionally ``codes`` (source code -> value,
case-insensitive), ``type`` (text, date, datetime, bool, list; by default the contract's type),
``formats``, ``true_values``/``false_values``, ``separator`` (lists), ``default`` and ``required``
(by default: required when the contract requires the field). Values found in a message are
checked again by the contract (``build_case_event``).

``mode: canonical`` passes canonical CloudEvents through with validation (optionally only from
``accept_sources`` prefixes); contact updates (``ehc.contacts.updated``) are accepted too.

Contact data never goes into a case event: data fields come only from the contract's models
(which have no contact fields), and a mapping that reads a contact field into an event, an event
id or an unhashed case id is refused at load time.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from services.intake.domain.case_ids import deterministic_event_id, looks_personal, opaque_case_id
from services.intake.domain.results import IntakeItem, Rejection, describe_safely, one_line
from services.intake.domain.values import (
    FALSE_TEXT,
    PLAUSIBLE_YEARS,
    TRUE_TEXT,
    parse_date_with_formats,
    parse_datetime_with_formats,
    parse_flag,
)
from shared.contracts import (
    CASE_EVENT_TYPES,
    EVENT_MODELS,
    CaseEventEnvelope,
    ContactsUpdated,
    build_case_event,
    parse_case_event,
    parse_contacts,
    utcnow,
)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "mappings"
KEY_PATH = "$key"
ValueKind = Literal["text", "date", "datetime", "bool", "list"]


CASE_REFERENCE_MAX = 50  # the longest case reference ehc.contacts carries

class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and every problem."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class _Reject(Exception):
    """Raised inside a conversion; becomes one Rejection with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the mapping file's model ------------------------------------------------------------------

class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldSpec(_Spec):
    """Where one value comes from: a path in the message or a constant, then how to read it."""

    from_: str | list[str] | None = Field(
        default=None, alias="from",
        description="Dotted path in the message ($key: the message key); a list: the first one present.",
    )
    const: Any = Field(default=None, description="A constant value (instead of from).")
    codes: dict[str, Any] | None = Field(default=None, description="Source code -> value (case-insensitive).")
    type: ValueKind | None = Field(default=None, description="How to read the value; default: the contract's type.")
    formats: list[str] | None = Field(default=None, description="Date or date-time formats (strptime, or iso).")
    true_values: list[str] | None = Field(default=None, description="Texts read as true (default 1, true, Y, yes).")
    false_values: list[str] | None = Field(default=None, description="Texts read as false (default 0, false, N, no).")
    separator: str = Field(default=",", description="Separator of a list written as one text.")
    default: Any = Field(default=None, description="Value when the message has none (makes the field optional).")
    required: bool | None = Field(default=None, description="Default: required when the contract requires it.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str | list) else value

    @field_validator("codes", mode="before")
    @classmethod
    def _normalise_codes(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError("codes must be a mapping of source code -> value")
        normalised: dict[str, Any] = {}
        for code, mapped in value.items():
            if isinstance(code, bool) or code is None:
                raise ValueError("a code read as true/false/null: quote codes such as 'Y', 'N', 'yes', 'on', 'null'")
            text = str(code).strip().casefold()
            if text in normalised:
                raise ValueError(f"code {code!r} is listed twice (codes are case-insensitive)")
            normalised[text] = mapped
        return normalised

    @model_validator(mode="after")
    def _one_origin(self) -> FieldSpec:
        if (self.from_ is None) == (not self.has_const):
            raise ValueError("give exactly one of 'from' (a path in the message) or 'const'")
        if self.from_ is not None and (not self.sources or not all(p.strip() for p in self.sources)):
            raise ValueError("'from' is empty")
        return self

    @cached_property
    def sources(self) -> list[str]:
        """The paths to read, in order of preference."""
        if self.from_ is None:
            return []
        return [self.from_] if isinstance(self.from_, str) else list(self.from_)

    @cached_property
    def label(self) -> str:
        """How rejection reasons name this field."""
        return " or ".join(self.sources) if self.sources else "(constant)"

    @cached_property
    def has_const(self) -> bool:
        return "const" in self.model_fields_set

    @cached_property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    def paths(self) -> set[str]:
        return set(self.sources)


class CaseIdSpec(_Spec):
    from_: str = Field(alias="from", description="The council's case reference.")
    hash: bool = Field(default=True, description="Hash into an opaque case id (false only for opaque references).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value


class EventIdSpec(_Spec):
    from_: str | None = Field(default=None, alias="from", description="A unique message id in the source.")
    derive: list[str] | None = Field(
        default=None, description="Paths whose values (with the case id and type) give a deterministic id."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_origin(self) -> EventIdSpec:
        if (self.from_ is None) == (self.derive is None):
            raise ValueError("give exactly one of 'from' (a message id) or 'derive' (a list of paths)")
        if self.derive is not None and not self.derive:
            raise ValueError("'derive' needs at least one path")
        return self


class TimeSpec(_Spec):
    from_: str = Field(alias="from", description="When the source recorded the event.")
    formats: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value


class ContactSpec(_Spec):
    """One person to contact; produced only when the message has a name, e-mail or phone for them."""

    role: FieldSpec | None = None
    name: FieldSpec | None = None
    email: FieldSpec | None = None
    phone: FieldSpec | None = None
    channel: FieldSpec | None = None
    language: FieldSpec | None = None
    consent: FieldSpec = Field(description="Recorded consent; a message without it means no consent.")

    def specs(self) -> dict[str, FieldSpec]:
        return self._specs

    @cached_property
    def _specs(self) -> dict[str, FieldSpec]:
        return {name: spec for name in type(self).model_fields if (spec := getattr(self, name)) is not None}


class ContactsSpec(_Spec):
    people: list[ContactSpec] = Field(min_length=1, max_length=10)
    local_offer_url: FieldSpec | None = None
    sendiass_contact: FieldSpec | None = None
    child_first_name: FieldSpec | None = Field(
        default=None, description="The child's first name (personal data: only on ehc.contacts).")

    def paths(self) -> set[str]:
        found: set[str] = set()
        for person in self.people:
            for spec in person.specs().values():
                found |= spec.paths()
        if self.child_first_name is not None:
            found |= self.child_first_name.paths()
        return found


_Compiled = tuple[str, FieldSpec, ValueKind, bool]  # data field, spec, kind, required


class SourceMapping(BaseModel):
    """A council source's mapping (see the module documentation for the YAML shape)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
    source: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="CloudEvents source of the events produced (and the scope of the case ids)."
    )
    mode: Literal["mapped", "canonical"] = "mapped"
    description: str = ""
    timezone: str = Field(default="Europe/London", description="Zone of dates and times without offset.")
    date_formats: list[str] = Field(default_factory=lambda: ["iso"], min_length=1)
    datetime_formats: list[str] = Field(default_factory=lambda: ["iso"], min_length=1)
    max_message_bytes: int = Field(default=1_000_000, gt=0)
    kind: FieldSpec | None = None
    case_id: CaseIdSpec | None = None
    event_id: EventIdSpec | None = None
    time: Literal["now"] | TimeSpec = "now"
    supersedes: FieldSpec | None = None
    defaults: dict[str, FieldSpec] = Field(default_factory=dict)
    events: dict[str, dict[str, FieldSpec]] = Field(default_factory=dict)
    contacts: ContactsSpec | None = None
    accept_sources: list[str] = Field(
        default_factory=list, description="canonical mode: accepted `source` prefixes (empty: any)."
    )

    _compiled: dict[str, list[_Compiled]] = PrivateAttr(default_factory=dict)
    _zone: ZoneInfo = PrivateAttr()

    @field_validator("events", mode="before")
    @classmethod
    def _empty_types(cls, value: Any) -> Any:
        # "ehc.review.meeting_held:" with nothing under it: a type whose data is only the defaults
        if isinstance(value, Mapping):
            return {type_: {} if fields is None else fields for type_, fields in value.items()}
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone (use an IANA name such as Europe/London)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SourceMapping:
        problems = _check_mode(self)
        if self.mode == "mapped" and not problems:
            problems = _check_events(self) + _check_contacts(self)
        if problems:
            raise ValueError("; ".join(problems))
        # Checked: compile the per-type field plans once.
        self._zone = ZoneInfo(self.timezone)
        if self.mode == "mapped":
            self._compiled = {type_: _compile(type_, self.defaults, fields) for type_, fields in self.events.items()}
        return self

    # Private attributes are slow to read on a pydantic model; the hot path reads these copies.
    @cached_property
    def _plans(self) -> dict[str, list[_Compiled]]:
        return self._compiled

    @cached_property
    def _tz(self) -> ZoneInfo:
        return self._zone

    # --- loading --------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> SourceMapping:
        """Load and validate a mapping from a file path or from YAML text."""
        origin = "mapping"
        if isinstance(path_or_text, Path) or (
            "\n" not in path_or_text and path_or_text.strip().endswith((".yaml", ".yml"))
        ):
            path = Path(path_or_text)
            origin = path.name
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise MappingError(f"{path}: cannot read the mapping file ({type(exc).__name__})") from None
        else:
            text = path_or_text
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise MappingError(f"{origin}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        if not isinstance(document, dict):
            raise MappingError(f"{origin}: a mapping file is a YAML mapping with name, source, kind, events, ...")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise MappingError(f"{origin}: {_describe_mapping_errors(exc)}") from None

    # --- converting -----------------------------------------------------------------------

    def convert(
        self, raw: bytes, *, key: bytes | None = None, case_id_key: bytes, now: datetime | None = None
    ) -> list[IntakeItem]:
        """Convert one message; never raises for bad input (a Rejection says what was wrong)."""
        try:
            if len(raw) > self.max_message_bytes:
                raise _Reject(f"message is larger than {self.max_message_bytes} bytes")
            try:
                document = json.loads(raw)
            except (ValueError, RecursionError):
                raise _Reject("message is not valid JSON") from None
            if not isinstance(document, dict):
                raise _Reject("message is not a JSON object")
            if self.mode == "canonical":
                return [self._pass_through(document, raw)]
        except _Reject as problem:
            return [Rejection(reason=problem.reason, original=raw)]
        except Exception as exc:  # a safety net: bad input must never stop the intake
            return [Rejection(reason=f"internal error while converting ({type(exc).__name__})", original=raw)]
        return self.convert_record(document, original=raw, key=key, case_id_key=case_id_key, now=now)

    def convert_record(
        self,
        record: Mapping[str, Any],
        *,
        original: bytes,
        case_id_key: bytes,
        key: bytes | None = None,
        location: str | None = None,
        now: datetime | None = None,
    ) -> list[IntakeItem]:
        """Convert one already-parsed record (a JSON object, or a CSV row as a flat dict)."""
        if self.mode == "canonical":
            raise ValueError("a canonical mapping converts whole CloudEvents messages (use convert)")
        try:
            return self._convert(record, key=key, case_id_key=case_id_key, now=now, original=original,
                                 location=location)
        except _Reject as problem:
            return [Rejection(reason=problem.reason, original=original, location=location)]
        except Exception as exc:  # a safety net: bad input must never stop the intake
            return [Rejection(reason=f"internal error while converting ({type(exc).__name__})",
                              original=original, location=location)]

    def _convert(
        self, record: Mapping[str, Any], *, key: bytes | None, case_id_key: bytes, now: datetime | None,
        original: bytes, location: str | None,
    ) -> list[IntakeItem]:
        assert self.kind is not None and self.case_id is not None and self.event_id is not None
        type_ = self._value(self.kind, record, key, "text", required=True)
        plans = self._plans
        if type_ not in plans:  # const kinds are checked at load; codes map to known types
            raise _Reject(f"field {self.kind.label} does not give a known event type")
        case_id = self._case_id(record, key, case_id_key)
        event_id = self._event_id(record, key, case_id, type_)
        moment = self._time(record, key, now)
        data: dict[str, Any] = {}
        for field, spec, kind, required in plans[type_]:
            value = self._value(spec, record, key, kind, required=required)
            if value is not MISSING:
                data[field] = value
        supersedes = None
        if self.supersedes is not None:
            found = self._value(self.supersedes, record, key, "text", required=False)
            supersedes = None if found is MISSING else found
        try:
            event = build_case_event(type_, id=event_id, source=self.source, case_id=case_id, time=moment,
                                     supersedes=supersedes, **data)
        except ValidationError as exc:
            raise _Reject(describe_safely(exc, prefix=f"{type_}: ")) from None
        if (where := _implausible_date(event)) is not None:
            raise _Reject(f"{type_}: {where}: is not a plausible date (years {PLAUSIBLE_YEARS.start} to "
                          f"{PLAUSIBLE_YEARS.stop - 1})")
        items: list[IntakeItem] = [event]
        if self.contacts is not None:
            where = "contacts" if location is None else f"{location} / contacts"
            items.extend(self._contacts(record, key, case_id, event_id, moment, original, where))
        return items

    def _pass_through(self, document: dict[str, Any], raw: bytes) -> IntakeItem:
        is_contacts = document.get("type") == "ehc.contacts.updated"
        try:
            item: IntakeItem = parse_contacts(document) if is_contacts else parse_case_event(document)
        except ValidationError as exc:
            raise _Reject(describe_safely(exc, prefix="contacts: " if is_contacts else "")) from None
        assert not isinstance(item, Rejection)
        if (where := _implausible_date(item)) is not None:
            raise _Reject(f"{where}: is not a plausible date (years {PLAUSIBLE_YEARS.start} to "
                          f"{PLAUSIBLE_YEARS.stop - 1})")
        if self.accept_sources and not any(item.source.startswith(p) for p in self.accept_sources):
            raise _Reject("source is not one this mapping accepts")
        if looks_personal(item.subject):
            raise _Reject("subject looks like a UPN or ULN: case ids must be opaque")
        return item

    # --- pieces ---------------------------------------------------------------------------

    def _case_id(self, record: Mapping[str, Any], key: bytes | None, case_id_key: bytes) -> str:
        assert self.case_id is not None
        reference = _text(self.case_id.from_, _lookup(record, self.case_id.from_, key))
        if reference is None:
            raise _Reject(f"field {self.case_id.from_} (case reference) is missing")
        if self.case_id.hash:
            return opaque_case_id(case_id_key, self.source, reference)
        if looks_personal(reference) or not _OPAQUE.fullmatch(reference):
            raise _Reject(f"field {self.case_id.from_} is not an opaque case id (hash: false needs one)")
        return reference

    def _event_id(self, record: Mapping[str, Any], key: bytes | None, case_id: str, type_: str) -> str:
        assert self.event_id is not None
        if self.event_id.from_ is not None:
            found = _text(self.event_id.from_, _lookup(record, self.event_id.from_, key))
            if found is None:
                raise _Reject(f"field {self.event_id.from_} (event id) is missing")
            return found
        parts = [_text(path, _lookup(record, path, key)) or "" for path in self.event_id.derive or []]
        return deterministic_event_id(self.source, case_id, type_, *parts)

    def _time(self, record: Mapping[str, Any], key: bytes | None, now: datetime | None) -> datetime:
        if self.time == "now":
            return now or utcnow()
        assert isinstance(self.time, TimeSpec)
        found = _text(self.time.from_, _lookup(record, self.time.from_, key))
        if found is None:
            raise _Reject(f"field {self.time.from_} (event time) is missing")
        try:
            return _parse_datetime(found, tuple(self.time.formats or self.datetime_formats), self._tz)
        except ValueError as exc:
            raise _Reject(f"field {self.time.from_} {exc}") from None

    def _value(self, spec: FieldSpec, record: Mapping[str, Any], key: bytes | None, kind: ValueKind,
               *, required: bool) -> Any:
        if spec.has_const:
            return spec.const
        path = spec.label
        found: Any = MISSING
        for candidate in spec.sources:
            found = _lookup(record, candidate, key)
            if not _absent(found):
                path = candidate
                break
        if _absent(found):
            if spec.has_default:
                return spec.default
            if required:
                raise _Reject(f"field {path} is missing")
            return MISSING
        if spec.codes is not None:
            code = _text(path, found)
            mapped = spec.codes.get((code or "").strip().casefold(), MISSING)
            if mapped is MISSING:
                raise _Reject(f"field {path} has a code that is not in the mapping's code list")
            return mapped
        return self._read(path, found, spec, spec.type or kind)

    def _read(self, path: str, found: Any, spec: FieldSpec, kind: ValueKind) -> Any:
        if kind == "list":
            if isinstance(found, list):
                return [_text(path, item) for item in found if _text(path, item) is not None]
            joined = _text(path, found) or ""
            return [part.strip() for part in joined.split(spec.separator) if part.strip()]
        if kind == "bool":
            if isinstance(found, bool):
                return found
            if isinstance(found, int) and found in (0, 1):
                return bool(found)
            try:
                return parse_flag(_text(path, found) or "", spec.true_values or TRUE_TEXT,
                                  spec.false_values or FALSE_TEXT)
            except ValueError as exc:
                raise _Reject(f"field {path} {exc}") from None
        text = _text(path, found)
        if kind == "text" or text is None:
            return text
        if not isinstance(found, str):
            raise _Reject(f"field {path} is not a date" if kind == "date" else f"field {path} is not a date and time")
        try:
            if kind == "date":
                return _parse_date(text, tuple(spec.formats or self.date_formats), self._tz)
            return _parse_datetime(text, tuple(spec.formats or self.datetime_formats), self._tz)
        except ValueError as exc:
            raise _Reject(f"field {path} {exc}") from None

    def _contacts(self, record: Mapping[str, Any], key: bytes | None, case_id: str, event_id: str,
                  moment: datetime, original: bytes, location: str) -> list[IntakeItem]:
        """The message's contact details as one ContactsUpdated (or a Rejection naming the field)."""
        assert self.contacts is not None
        try:
            people = [c for spec in self.contacts.people if (c := self._contact(spec, record, key))]
            if not people:
                return []
            data: dict[str, Any] = {"contacts": people}
            reference = self._case_reference(record, key)
            if reference is not None:  # staff tell cases apart by it; it goes nowhere but ehc.contacts
                data["case_reference"] = reference
            for name in ("local_offer_url", "sendiass_contact", "child_first_name"):
                spec = getattr(self.contacts, name)
                value = MISSING if spec is None else self._value(spec, record, key, "text", required=False)
                if value is not MISSING:
                    data[name] = value
            return [ContactsUpdated.model_validate({
                "id": deterministic_event_id(self.source, "contacts", event_id), "source": self.source,
                "subject": case_id, "time": moment, "data": data,
            })]
        except _Reject as problem:
            return [Rejection(reason=f"contacts not imported: {problem.reason}", original=original,
                              location=location)]
        except ValidationError as exc:
            return [Rejection(reason=describe_safely(exc, prefix="contacts not imported: "), original=original,
                              location=location)]

    def _case_reference(self, record: Mapping[str, Any], key: bytes | None) -> str | None:
        """The council's own case reference (what the opaque case id was hashed from), when it fits."""
        if self.case_id is None or not self.case_id.hash:
            return None
        reference = _text(self.case_id.from_, _lookup(record, self.case_id.from_, key))
        return reference.strip() if reference and len(reference.strip()) <= CASE_REFERENCE_MAX else None

    def _contact(self, spec: ContactSpec, record: Mapping[str, Any], key: bytes | None) -> dict[str, Any] | None:
        values = {}
        for name, field in spec.specs().items():
            kind: ValueKind = "bool" if name == "consent" else "text"
            value = self._value(field, record, key, kind, required=False)
            if value is not MISSING:
                values[name] = value
        if not any(values.get(name) for name in ("name", "email", "phone")):
            return None
        values.setdefault("consent", False)  # no recorded consent: the family is not contacted
        if "channel" not in values:
            values["channel"] = "email" if values.get("email") else "sms" if values.get("phone") else "none"
        return values


# --- helpers ----------------------------------------------------------------------------------

# A council's messages repeat the same few thousand dates: parse each text once (failures are not cached).
@lru_cache(maxsize=8192)
def _parse_date(text: str, formats: tuple[str, ...], zone: ZoneInfo) -> date:
    return parse_date_with_formats(text, formats, zone)


@lru_cache(maxsize=8192)
def _parse_datetime(text: str, formats: tuple[str, ...], zone: ZoneInfo) -> datetime:
    return parse_datetime_with_formats(text, formats, zone)


_OPAQUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,199}")


def _lookup(record: Mapping[str, Any], path: str, key: bytes | None) -> Any:
    """The value at a dotted path (a literal key with dots wins; digits index lists)."""
    if path == KEY_PATH:
        if key is None:
            return MISSING
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            raise _Reject("the message key is not UTF-8 text") from None
    if path in record:
        return record[path]
    node: Any = record
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part, MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def _implausible_date(item: CaseEventEnvelope | ContactsUpdated) -> str | None:
    """The first date of an event outside PLAUSIBLE_YEARS (it would break date arithmetic downstream)."""
    if item.time.year not in PLAUSIBLE_YEARS:
        return "time"
    for name, value in item.data:  # type: ignore[union-attr]  # every envelope has data
        if isinstance(value, date) and value.year not in PLAUSIBLE_YEARS:
            return f"data.{name}"
    return None


def _absent(value: Any) -> bool:
    return value is MISSING or value is None or (isinstance(value, str) and not value.strip())


def _text(path: str, value: Any) -> str | None:
    """A single value as stripped text; None when missing or empty."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    raise _Reject(f"field {path} is not a single value")


def _value_kind(annotation: Any) -> ValueKind:
    """How to read a contract field from text: by its annotation."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _value_kind(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _value_kind(options[0]) if len(options) == 1 else "text"
    if origin is list:
        return "list"
    if annotation is datetime:
        return "datetime"
    if annotation is date:
        return "date"
    if annotation is bool:
        return "bool"
    return "text"


def _data_model(type_: str) -> type[BaseModel]:
    return EVENT_MODELS[type_].model_fields["data"].annotation  # type: ignore[return-value]


def _compile(type_: str, defaults: dict[str, FieldSpec], fields: dict[str, FieldSpec]) -> list[_Compiled]:
    model_fields = _data_model(type_).model_fields
    merged = {name: spec for name, spec in defaults.items() if name in model_fields} | fields
    compiled: list[_Compiled] = []
    for name, spec in merged.items():
        info = model_fields[name]
        required = spec.required if spec.required is not None else info.is_required()
        compiled.append((name, spec, _value_kind(info.annotation), required))
    return compiled


def _check_mode(mapping: SourceMapping) -> list[str]:
    mapped_parts = {"kind": mapping.kind, "case_id": mapping.case_id, "event_id": mapping.event_id,
                    "events": mapping.events or None}
    if mapping.mode == "canonical":
        given = [name for name, value in mapped_parts.items() if value is not None]
        extra = [name for name in ("contacts", "supersedes") if getattr(mapping, name) is not None]
        return [f"mode canonical takes no {name}" for name in given + extra]
    missing = [name for name, value in mapped_parts.items() if value is None]
    return [f"mode mapped needs {name}" for name in missing]


def _check_events(mapping: SourceMapping) -> list[str]:
    problems: list[str] = []
    assert mapping.kind is not None
    for type_ in mapping.events:
        if type_ not in CASE_EVENT_TYPES:
            problems.append(f"events.{type_}: not a canonical event type")
    if problems:
        return problems
    if mapping.kind.codes is None and not mapping.kind.has_const:
        return ["kind: give codes (source code -> canonical event type) or const (one event type)"]
    produced = set(mapping.kind.codes.values()) if mapping.kind.codes is not None else {mapping.kind.const}
    for type_ in sorted(str(t) for t in produced):
        if type_ not in CASE_EVENT_TYPES:
            problems.append(f"kind: {type_!r} is not a canonical event type")
        elif type_ not in mapping.events:
            problems.append(f"kind: {type_} has no entry under events")
    for type_ in sorted(set(mapping.events) - {str(t) for t in produced}):
        problems.append(f"events.{type_}: no code of kind gives this type")
    defaults_used = set()
    for type_, fields in mapping.events.items():
        model_fields = _data_model(type_).model_fields
        for name in fields:
            if name not in model_fields:
                problems.append(f"events.{type_}.{name}: {type_} has no data field {name} "
                                f"(fields: {', '.join(model_fields)})")
        for name, info in model_fields.items():
            covered = name in fields or name in mapping.defaults
            defaults_used |= {name} & set(mapping.defaults)
            if info.is_required() and not covered:
                problems.append(f"events.{type_}.{name}: required by the contract but not mapped")
    for name in sorted(set(mapping.defaults) - defaults_used):
        problems.append(f"defaults.{name}: no mapped event type has a data field {name}")
    return problems


def _check_contacts(mapping: SourceMapping) -> list[str]:
    if mapping.contacts is None:
        return []
    contact_paths = mapping.contacts.paths() - {KEY_PATH}
    uses: list[tuple[str, set[str]]] = []
    for type_, fields in mapping.events.items():
        for name, spec in fields.items():
            uses.append((f"events.{type_}.{name}", spec.paths()))
    uses += [(f"defaults.{name}", spec.paths()) for name, spec in mapping.defaults.items()]
    if mapping.kind is not None:
        uses.append(("kind", mapping.kind.paths()))
    if mapping.event_id is not None:
        id_paths = set(mapping.event_id.derive or [])
        if mapping.event_id.from_ is not None:
            id_paths.add(mapping.event_id.from_)
        uses.append(("event_id", id_paths))
    if mapping.supersedes is not None:
        uses.append(("supersedes", mapping.supersedes.paths()))
    if isinstance(mapping.time, TimeSpec):
        uses.append(("time", {mapping.time.from_}))
    if mapping.case_id is not None and not mapping.case_id.hash:
        uses.append(("case_id", {mapping.case_id.from_}))
    problems = []
    for where, paths in uses:
        for path in sorted(paths & contact_paths):
            problems.append(f"{where}: {path} is a contact field; contact data never goes into a case event")
    return problems


def _describe_mapping_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal[")))
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return one_line("; ".join(parts), limit=2000)


def load_mappings(directory: str | Path = EXAMPLES_DIR) -> dict[str, SourceMapping]:
    """Every ``*.yaml`` mapping of a folder, by name; a bad file or a repeated name raises MappingError."""
    found: dict[str, SourceMapping] = {}
    for path in sorted(Path(directory).glob("*.y*ml")):
        mapping = SourceMapping.from_yaml(path)
        if mapping.name in found:
            raise MappingError(f"{path.name}: the name {mapping.name!r} is used by another mapping")
        found[mapping.name] = mapping
    return found
