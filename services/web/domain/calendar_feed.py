"""A caseworker's deadlines as an iCalendar feed (all-day events on the due dates), for the secret
address only that caseworker knows. No names: the case's opaque id, the rule and the link."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from icalendar import Calendar, Event


def ics(deadlines: Iterable[Mapping[str, Any]], base_url: str, council_name: str, now: datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//EHC deadlines//web front//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"EHC deadlines ({council_name})")
    for d in deadlines:
        explained = d.get("explanation") or {}
        due = date.fromisoformat(str(d["due_on"]))
        event = Event()
        event.add("uid", f"{d['deadline_id']}@ehc-deadlines")
        event.add("dtstamp", now)
        event.add("dtstart", due)
        event.add("dtend", due + timedelta(days=1))
        title = explained.get("title") or d["rule_id"]
        status = {"breached": "MISSED: ", "exception": "Exception: "}.get(d["status"], "")
        event.add("summary", f"{status}{title} (case {d['case_id']})")
        url = f"{base_url.rstrip('/')}/cases/{d['case_id']}"
        event.add("description", f"{explained.get('legal_source') or ''}\nRule {d['rule_id']}\n{url}")
        event.add("url", url)
        cal.add_component(event)
    return bytes(cal.to_ical())
