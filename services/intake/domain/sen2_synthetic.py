"""Synthetic SEN2 returns for tests and benchmarks (no real person in them).

``write_sen2_xml`` and ``write_sen2_csv`` write the same generated records (same ``seed``) in the
XML return and in the COLLECT CSV export. ``year`` is the calendar year of activity: the return
is the one collected in January ``year + 1`` (header Year ``year + 1``). The records mix new
requests (assessed, refused, withdrawn, awaiting), plans issued 10 to 70 weeks after the request
(some with a Week20 exception, a few without a ReceivedDate), existing plans with annual reviews
(maintain, amend, cease; some ceased), phase transfers, second requests, persons identified by
UPN, by ULN only or by name and birth date, and element names in the case variants and the WPB
spelling some systems use.

Both writers return a :class:`GeneratedSen2` with the DfE 20-week figures for ``year`` and the
event counts, computed independently from the generator's own records (plain dates, not the
files), so tests can compare the importer and the report against them.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_ETHNICITY = ["WBRI", "WOTH", "MWBC", "AIND", "APKN", "BAFR", "BCRB", "CHNE", "OOTH", "REFU"]
_SEN_TYPES = ["ASD", "SEMH", "SLCN", "MLD", "SPLD", "PD", "HI", "VI", "MSI", "PMLD", "SLD", "OTH"]
_SETTINGS = ["MMS", "SPS", "AP", "EYS", "FE", "OTH"]


@dataclass
class SynthAssessment:
    outcome: str  # Y N A W H
    outcome_on: date | None
    week20: bool = False
    plan_start: date | None = None
    cease_on: date | None = None
    cease_reason: int | None = None
    urn: str = ""


@dataclass
class SynthActive:
    urn: str
    sen_type: str
    review_meeting: date | None = None
    last_review: date | None = None
    review_outcome: str | None = None  # M A C
    phase_due: date | None = None
    phase_final: date | None = None


@dataclass
class SynthRequest:
    received: date | None
    outcome: str  # Y N A W H
    outcome_on: date | None
    request_source: int | None = None
    assessment: SynthAssessment | None = None
    active: SynthActive | None = None


@dataclass
class SynthPerson:
    surname: str
    forename: str
    birth: date
    sex: str
    ethnicity: str
    postcode: str
    upn: str
    uln: str
    upn_unknown: str
    requests: list[SynthRequest] = field(default_factory=list)
    variant_names: bool = False  # write SENsetting / WPB spellings (XML)


@dataclass
class GeneratedSen2:
    """What was written, and the figures a correct importer and report must find in it."""

    path: Path
    year: int
    lea: str
    persons: int
    requests: int
    expected_timeliness: dict[str, Any]
    expected_events: Counter[str]
    expected_rejected_requests: int
    sensitive_values: list[str] = field(default_factory=list)  # names, UPNs, ULNs, postcodes (a sample)


def reference_date_for(collection_year: int) -> date:
    """The census day: the third Thursday of January."""
    first = date(collection_year, 1, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(days=14)


def generate_persons(persons: int, year: int, seed: int, lea: str = "919") -> list[SynthPerson]:
    """The records both writers write (deterministic for a seed)."""
    rng = random.Random(seed)
    reference = reference_date_for(year + 1)
    with_source = year + 1 >= 2025
    people = []
    for i in range(1, persons + 1):
        people.append(_person(rng, i, year, lea, reference, with_source))
    return people


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max((end - start).days, 0)))


def _person(rng: random.Random, i: int, year: int, lea: str, reference: date, with_source: bool) -> SynthPerson:
    identity = rng.random()
    upn = f"{_LETTERS[i % len(_LETTERS)]}{lea}{i:09d}" if identity < 0.85 else ""
    uln = f"{rng.randint(1, 9)}{i:09d}" if 0.80 < identity < 0.95 else ""
    unknown = "UN2" if identity >= 0.95 else ""
    person = SynthPerson(
        surname=f"Synthsurname{i:06d}", forename=f"Synthforename{i:06d}",
        birth=_day(rng, date(year - 23, 1, 1), date(year - 1, 12, 31)),
        sex=rng.choice("MFU"), ethnicity=rng.choice(_ETHNICITY),
        postcode=f"ZZ{rng.randint(1, 99)} {rng.randint(1, 9)}Z{_LETTERS[i % len(_LETTERS)]}",
        upn=upn, uln=uln, upn_unknown=unknown, variant_names=rng.random() < 0.05,
    )
    scenario = rng.random()
    if scenario < 0.45:
        person.requests.append(_new_request(rng, year, reference, with_source))
    elif scenario < 0.90:
        person.requests.append(_existing_plan(rng, person, year, reference, with_source))
    else:
        refused_on = _day(rng, date(year - 1, 1, 1), date(year - 1, 9, 30))
        person.requests.append(SynthRequest(refused_on, "N", refused_on + timedelta(days=rng.randint(20, 42)),
                                            rng.randint(1, 5) if with_source else None))
        person.requests.append(_new_request(rng, year, reference, with_source))
    return person


def _new_request(rng: random.Random, year: int, reference: date, with_source: bool) -> SynthRequest:
    received = _day(rng, date(year - 1, 6, 1), date(year, 11, 30))
    source = rng.choices([1, 2, 3, 4, 5], weights=[55, 35, 5, 3, 2])[0] if with_source else None
    decided_on = received + timedelta(days=rng.randint(14, 70))
    if decided_on >= reference:
        return SynthRequest(received, "A", None, source)
    roll = rng.random()
    if roll < 0.06:
        return SynthRequest(received, "W", decided_on, source)
    if roll < 0.30:
        return SynthRequest(received, "N", decided_on, source)
    request = SynthRequest(received, "Y", decided_on, source)
    roll = rng.random()
    if roll < 0.10:
        notice = received + timedelta(days=rng.randint(84, 126))
        request.assessment = SynthAssessment("N", notice) if notice < reference else SynthAssessment("A", None)
        return request
    if roll < 0.12:
        request.assessment = SynthAssessment("W", decided_on + timedelta(days=rng.randint(10, 60)))
        if request.assessment.outcome_on and request.assessment.outcome_on >= reference:
            request.assessment = SynthAssessment("A", None)
        return request
    band = rng.random()
    weeks = rng.uniform(10, 20) if band < 0.55 else rng.uniform(20, 52) if band < 0.90 else rng.uniform(52, 70)
    issued = received + timedelta(days=round(weeks * 7))
    if issued >= reference:
        request.assessment = SynthAssessment("A", None, week20=rng.random() < 0.05)
        return request
    late = (issued - received).days > 140
    urn = f"{rng.randint(100000, 149999)}"
    request.assessment = SynthAssessment("Y", issued, week20=rng.random() < (0.18 if late else 0.03),
                                         plan_start=issued, urn=urn)
    if rng.random() < 0.02:
        request.assessment.cease_on = min(issued + timedelta(days=rng.randint(30, 200)), reference - timedelta(1))
        request.assessment.cease_reason = rng.randint(1, 9)
    if rng.random() < 0.006:
        request.received = None  # an issued plan without a ReceivedDate (the importer rejects it)
    request.active = SynthActive(urn=urn, sen_type=rng.choice(_SEN_TYPES))
    return request


def _existing_plan(rng: random.Random, person: SynthPerson, year: int, reference: date,
                   with_source: bool) -> SynthRequest:
    received = _day(rng, date(year - 6, 1, 1), date(year - 2, 6, 30))
    issued = received + timedelta(days=rng.randint(90, 220))
    urn = f"{rng.randint(100000, 149999)}"
    assessment = SynthAssessment("H", issued, plan_start=issued, urn=urn)
    active = SynthActive(urn=urn, sen_type=rng.choice(_SEN_TYPES))
    request = SynthRequest(received if rng.random() < 0.9 else None, "H", None, None, assessment, active)
    if rng.random() < 0.85:
        meeting = _day(rng, date(year, 1, 10), date(year, 12, 10))
        active.review_meeting = meeting
        decided = meeting + timedelta(days=rng.randint(5, 40))
        if decided < reference:
            active.last_review = decided
            active.review_outcome = rng.choices("MAC", weights=[70, 22, 8])[0]
            if active.review_outcome == "C":
                cease = decided + timedelta(days=rng.randint(30, 70))
                if cease < reference:
                    assessment.cease_on = cease
                    assessment.cease_reason = rng.randint(1, 9)
    if with_source and rng.random() < 0.12:
        age_next = year + 1 - person.birth.year
        if age_next <= 11:
            active.phase_due = date(year + 1, 2, 15)
        elif age_next <= 16:
            active.phase_due = date(year + 1, 3, 31)
        else:
            active.phase_due = date(year + 1, rng.randint(4, 11), rng.randint(1, 28))
        if rng.random() < 0.2:
            active.phase_due = date(year, 2, 15)
            active.phase_final = date(year, 2, rng.randint(1, 14))
    return request


# --- independent expectations ----------------------------------------------------------------

def _round(numerator: int, denominator: int) -> float | None:
    if not denominator:
        return None
    value = Decimal(numerator) / Decimal(denominator)
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def expected_timeliness(people: list[SynthPerson], year: int, lea: str) -> dict[str, Any]:
    def figures(exclude_exceptions: bool) -> dict[str, Any]:
        plans = within = band = over = untimed = days_total = 0
        for person in people:
            for request in person.requests:
                a = request.assessment
                if a is None or a.outcome != "Y" or a.outcome_on is None or a.outcome_on.year != year:
                    continue
                if exclude_exceptions and a.week20:
                    continue
                plans += 1
                if request.received is None:
                    untimed += 1
                    continue
                days = (a.outcome_on - request.received).days
                days_total += days
                within += days <= 140
                band += 140 < days <= 364
                over += days > 364
        return {
            "plans": plans, "within_20_weeks": within, "percent_within_20_weeks": _round(100 * within, plans),
            "over_20_up_to_52_weeks": band, "over_52_weeks": over, "no_usable_received_date": untimed,
            "mean_weeks_to_issue": _round(days_total, 7 * (plans - untimed)),
        }

    exceptions = sum(
        1 for p in people for r in p.requests
        if r.assessment and r.assessment.outcome == "Y" and r.assessment.outcome_on
        and r.assessment.outcome_on.year == year and r.assessment.week20
    )
    return {"year": year, "lea": lea, "including_exceptions": figures(False),
            "excluding_exceptions": figures(True), "exceptions": exceptions, "plans_with_unusable_issue_date": 0}


def expected_events(people: list[SynthPerson]) -> tuple[Counter[str], int]:
    """Event counts by type and the number of rejected requests, by the documented SEN2 rules."""
    events: Counter[str] = Counter()
    rejected = 0
    for person in people:
        for request in person.requests:
            if request.outcome != "H" and request.received is None:
                rejected += 1
                continue
            if request.outcome != "H":
                events["ehc.request.received"] += 1
                if request.outcome in ("Y", "N"):
                    events["ehc.assessment.decided"] += 1
                elif request.outcome == "W":
                    events["ehc.case.closed"] += 1
            a = request.assessment
            if a is not None:
                if a.outcome in ("Y", "H") and a.outcome_on is not None:
                    events["ehc.plan.issued"] += 1
                elif a.outcome == "N":
                    events["ehc.plan.not_issued"] += 1
                elif a.outcome == "W":
                    events["ehc.case.closed"] += 1
                if a.week20 and (request.received or a.outcome_on):
                    events["ehc.exception.recorded"] += 1
                if a.cease_on is not None:
                    events["ehc.plan.ceased"] += 1
            active = request.active
            if active is not None:
                if active.review_meeting:
                    events["ehc.review.meeting_held"] += 1
                if active.last_review and active.review_outcome:
                    events["ehc.review.decision_issued"] += 1
                if active.phase_due is not None:
                    events["ehc.phase_transfer.planned"] += 1
                if active.phase_final is not None:
                    events["ehc.plan.amended"] += 1
    return events, rejected


def _result(path: Path, people: list[SynthPerson], year: int, lea: str) -> GeneratedSen2:
    events, rejected = expected_events(people)
    sample = people[: min(len(people), 50)]
    sensitive = [v for p in sample for v in (p.surname, p.forename, p.upn, p.uln, p.postcode) if v]
    return GeneratedSen2(path=path, year=year, lea=lea, persons=len(people),
                         requests=sum(len(p.requests) for p in people),
                         expected_timeliness=expected_timeliness(people, year, lea), expected_events=events,
                         expected_rejected_requests=rejected, sensitive_values=sensitive)


# --- writers ---------------------------------------------------------------------------------

def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def _blade(day: date | None) -> str:
    return f"{day.year:04d}-{_MONTHS[day.month - 1]}-{day.day:02d} 00:00:00" if day else ""


def write_sen2_xml(path: str | Path, persons: int, year: int, seed: int, lea: str = "919") -> GeneratedSen2:
    """Write a synthetic SEN2 XML return; see the module documentation."""
    target = Path(path)
    people = generate_persons(persons, year, seed, lea)
    reference = reference_date_for(year + 1)
    with target.open("w", encoding="utf-8", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<Message>\n\t<Header>\n\t\t<CollectionDetails>\n')
        out.write(f"\t\t\t<Collection>SEN2</Collection>\n\t\t\t<Year>{year + 1}</Year>\n")
        out.write(f"\t\t\t<ReferenceDate>{reference.isoformat()}</ReferenceDate>\n\t\t</CollectionDetails>\n")
        out.write(f"\t\t<Source>\n\t\t\t<SourceLevel>L</SourceLevel>\n\t\t\t<LEA>{lea}</LEA>\n"
                  "\t\t\t<SoftwareCode>Synthetic</SoftwareCode>\n\t\t\t<Release>1.0</Release>\n"
                  f"\t\t\t<SerialNo>001</SerialNo>\n\t\t\t<DateTime>{year + 1}-01-25T09:30:00</DateTime>\n"
                  "\t\t\t<DMO>Y</DMO>\n\t\t\t<DCO>Y</DCO>\n\t\t</Source>\n\t</Header>\n\t<Persons>\n")
        for person in people:
            out.write(_person_xml(person))
        out.write("\t</Persons>\n</Message>\n")
    return _result(target, people, year, lea)


def _el(tag: str, value: object, indent: int) -> str:
    text = "" if value is None else escape(str(value))
    return "\t" * indent + f"<{tag}>{text}</{tag}>\n"


def _person_xml(p: SynthPerson) -> str:
    setting, wbp = ("SENsetting", "WPB") if p.variant_names else ("SENSetting", "WBP")
    parts = ["\t\t<Person>\n"]
    for tag, value in (("Surname", p.surname), ("Forename", p.forename), ("PersonBirthDate", _iso(p.birth)),
                       ("Sex", p.sex), ("Ethnicity", p.ethnicity), ("PostCode", p.postcode), ("UPN", p.upn),
                       ("UniqueLearnerNumber", p.uln), ("UPNunknown", p.upn_unknown)):
        parts.append(_el(tag, value, 3))
    for r in p.requests:
        parts.append("\t\t\t<Requests>\n")
        parts.append(_el("ReceivedDate", _iso(r.received), 4))
        if r.request_source is not None:
            parts.append(_el("RequestSource", r.request_source, 4))
        parts.append(_el("RYA", 0, 4))
        parts.append(_el("RequestOutcomeDate", _iso(r.outcome_on), 4))
        parts.append(_el("RequestOutcome", r.outcome, 4))
        parts.append(_el("RequestMediation", 0, 4))
        parts.append(_el("RequestTribunal", 0, 4))
        parts.append(_el("Exported", "", 4))
        a = r.assessment
        if a is not None:
            parts.append("\t\t\t\t<Assessment>\n")
            parts.append(_el("AssessmentOutcome", a.outcome, 5))
            if a.outcome_on is not None:
                parts.append(_el("AssessmentOutcomeDate", _iso(a.outcome_on), 5))
            for tag in ("AssessmentMediation", "AssessmentTribunal", "OtherMediation", "OtherTribunal"):
                parts.append(_el(tag, 0, 5))
            parts.append(_el("Week20", 1 if a.week20 else 0, 5))
            if a.plan_start is not None:
                parts.append("\t\t\t\t\t<NamedPlan>\n")
                parts.append(_el("StartDate", _iso(a.plan_start), 6))
                parts.append("\t\t\t\t\t\t<PlanDetail>\n")
                for tag, cell in (("URN", a.urn), ("UKPRN", ""), (setting, "MMS"), (setting + "Other", ""),
                                  ("PlacementRank", 1), ("SENunitIndicator", 0),
                                  ("ResourcedProvisionIndicator", 0)):
                    parts.append(_el(tag, cell, 7))
                parts.append("\t\t\t\t\t\t</PlanDetail>\n")
                parts.append(_el("PlanRes", "", 6))
                parts.append(_el("Plan" + wbp, "", 6))
                for tag in ("PB", "OA"):
                    parts.append(_el(tag, 0, 6))
                parts.append(_el("DP", "", 6))
                parts.append(_el("CeaseDate", _iso(a.cease_on), 6))
                parts.append(_el("CeaseReason", a.cease_reason or "", 6))
                parts.append("\t\t\t\t\t</NamedPlan>\n")
            parts.append("\t\t\t\t</Assessment>\n")
        act = r.active
        if act is not None:
            parts.append("\t\t\t\t<ActivePlans>\n")
            parts.append(_el("TransferLA", "", 5))
            parts.append("\t\t\t\t\t<PlacementDetail>\n")
            for tag, cell in (("URN", act.urn), ("UKPRN", ""), (setting, "MMS"), (setting + "Other", ""),
                              ("PlacementRank", 1), ("EntryDate", ""), ("LeavingDate", ""),
                              ("SENunitIndicator", 0), ("ResourcedProvisionIndicator", 0), ("Res", ""),
                              (wbp, "")):
                parts.append(_el(tag, cell, 6))
            parts.append("\t\t\t\t\t</PlacementDetail>\n")
            parts.append("\t\t\t\t\t<SENneed>\n")
            parts.append(_el("SENtype", act.sen_type, 6))
            parts.append(_el("SENtypeRank", 1, 6))
            parts.append("\t\t\t\t\t</SENneed>\n")
            parts.append(_el("ReviewMeeting", _iso(act.review_meeting), 5))
            parts.append(_el("ReviewOutcome", act.review_outcome or "", 5))
            parts.append(_el("LastReview", _iso(act.last_review), 5))
            if act.phase_due is not None:
                parts.append(_el("PhaseTransferDueDate", _iso(act.phase_due), 5))
            if act.phase_final is not None:
                parts.append(_el("PhaseTransferFinalDate", _iso(act.phase_final), 5))
            parts.append("\t\t\t\t</ActivePlans>\n")
        parts.append("\t\t\t</Requests>\n")
    parts.append("\t\t</Person>\n")
    return "".join(parts)


_CSV_COLUMNS: dict[str, list[str]] = {
    "sen2": ["sen2tableid", "collection", "year", "referencedate", "sourcelevel", "lea", "softwarecode",
             "release", "serialno", "datetime", "dmo", "dco"],
    "person": ["persontableid", "personorderseqcolumn", "sen2tableid", "surname", "forename", "personbirthdate",
               "sex", "ethnicity", "postcode", "upn", "uniquelearnernumber", "upnunknown"],
    "requests": ["requeststableid", "requestsorderseqcolumn", "persontableid", "receiveddate", "requestsource",
                 "rya", "requestoutcomedate", "requestoutcome", "requestmediation", "requesttribunal", "exported"],
    "assessment": ["assessmenttableid", "requeststableid", "assessmentoutcome", "assessmentoutcomedate",
                   "assessmentmediation", "assessmenttribunal", "othermediation", "othertribunal", "week20"],
    "namedplan": ["namedplantableid", "assessmenttableid", "startdate", "planres", "planwbp", "pb", "oa", "dp",
                  "ceasedate", "ceasereason"],
    "plandetail": ["plandetailtableid", "namedplantableid", "urn", "ukprn", "sensetting", "sensettingother",
                   "placementrank", "senunitindicator", "resourcedprovisionindicator"],
    "activeplans": ["activeplanstableid", "requeststableid", "transferla", "reviewmeeting", "reviewoutcome",
                    "lastreview", "phasetransferduedate", "phasetransferfinaldate"],
    "placementdetail": ["placementdetailtableid", "activeplanstableid", "urn", "ukprn", "sensetting",
                        "sensettingother", "placementrank", "entrydate", "leavingdate", "senunitindicator",
                        "resourcedprovisionindicator", "res", "wbp"],
    "senneed": ["senneedtableid", "activeplanstableid", "sentype", "sentyperank"],
}


def write_sen2_csv(directory: str | Path, persons: int, year: int, seed: int, lea: str = "919") -> GeneratedSen2:
    """Write the same records as :func:`write_sen2_xml` as the nine COLLECT CSV files."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    people = generate_persons(persons, year, seed, lea)
    reference = reference_date_for(year + 1)
    rows: dict[str, list[list[object]]] = {table: [] for table in _CSV_COLUMNS}
    rows["sen2"].append([1, "SEN2", year + 1, _blade(reference), "L", lea, "Synthetic", "1.0", "001",
                         f"{year + 1}-Jan-25 09:30:00", "Y", "Y"])
    ids = Counter[str]()

    def next_id(table: str) -> int:
        ids[table] += 1
        return ids[table]

    def flag(value: bool) -> str:
        return "True" if value else "False"

    for p in people:
        pid = next_id("person")
        rows["person"].append([pid, pid, 1, p.surname, p.forename, _blade(p.birth), p.sex, p.ethnicity,
                               p.postcode, p.upn, p.uln, p.upn_unknown])
        for seq, r in enumerate(p.requests, start=1):
            rid = next_id("requests")
            rows["requests"].append([rid, seq, pid, _blade(r.received), r.request_source or "", flag(False),
                                     _blade(r.outcome_on), r.outcome, flag(False), flag(False), ""])
            a = r.assessment
            if a is not None:
                aid = next_id("assessment")
                rows["assessment"].append([aid, rid, a.outcome, _blade(a.outcome_on), flag(False), flag(False),
                                           flag(False), flag(False), flag(a.week20)])
                if a.plan_start is not None:
                    nid = next_id("namedplan")
                    rows["namedplan"].append([nid, aid, _blade(a.plan_start), "", "", flag(False), flag(False), "",
                                              _blade(a.cease_on), a.cease_reason or ""])
                    rows["plandetail"].append([next_id("plandetail"), nid, a.urn, "", "MMS", "", 1, flag(False),
                                               flag(False)])
            act = r.active
            if act is not None:
                apid = next_id("activeplans")
                rows["activeplans"].append([apid, rid, "", _blade(act.review_meeting), act.review_outcome or "",
                                            _blade(act.last_review), _blade(act.phase_due),
                                            _blade(act.phase_final)])
                rows["placementdetail"].append([next_id("placementdetail"), apid, act.urn, "", "MMS", "", 1, "", "",
                                                flag(False), flag(False), "", ""])
                rows["senneed"].append([next_id("senneed"), apid, act.sen_type, 1])
    for table, columns in _CSV_COLUMNS.items():
        with (folder / f"{table}.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows(rows[table])
    return _result(folder, people, year, lea)
