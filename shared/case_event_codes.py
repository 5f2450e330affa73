"""The closed sets of codes some canonical case-event fields take (DESIGN §2).

Plain enums, no pydantic: the contracts (shared/contracts/case_events.py) use them, and so do
readers that must not import pydantic to start (the deadlines command line's msgspec Structs,
services/deadlines/adapters/event_structs.py).
"""

from __future__ import annotations

from enum import StrEnum


class ProviderKind(StrEnum):
    school = "school"
    post16 = "post16"
    early_years = "early_years"
    health = "health"
    social_care = "social_care"
    educational_psychology = "educational_psychology"
    other = "other"


class OrderType(StrEnum):
    assess = "assess"
    make_plan = "make_plan"
    amend = "amend"
    school_name = "school_name"
    continue_ = "continue"
    recommendation = "recommendation"


class ExceptionCode(StrEnum):
    E1 = "E1"  # school or post-16 closure, Regs 10(4)(a)
    E2 = "E2"  # early-years closure, Regs 10(4)(b)
    E3 = "E3"  # exceptional personal circumstances, Regs 10(4)(c), 8(2)(a)
    E4 = "E4"  # absence from the area, Regs 10(4)(d), 8(2)(b)
    E5 = "E5"  # missed appointment, Regs 8(2)(c)
