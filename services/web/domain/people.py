"""Who is signed in, and what they may see.

Roles come from the identity provider's roles claim or, failing that, from the mapping in
settings (``EHC_WEB__ROLE_MAPPING``): ``caseworker`` (their own cases: the caseworker id is a claim,
``sub`` by default), ``manager:<team_id>`` (a team; several allowed), ``manager:area:<area_id>``
(an area), ``manager`` (the whole council) and ``admin`` (everything, and subscriptions). Unknown
roles are ignored; a person with no known role is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Staff:
    subject: str
    name: str
    caseworker_id: str | None = None
    teams: frozenset[str] = field(default_factory=frozenset)  # managed teams
    areas: frozenset[str] = field(default_factory=frozenset)  # managed areas
    council: bool = False  # manager of the whole council
    admin: bool = False

    @property
    def is_manager(self) -> bool:
        return self.admin or self.council or bool(self.teams) or bool(self.areas)

    @property
    def role_names(self) -> list[str]:
        names = ["caseworker"] if self.caseworker_id else []
        names += [f"manager of {t}" for t in sorted(self.teams)] + [f"manager of area {a}" for a in sorted(self.areas)]
        return names + (["manager (whole council)"] if self.council else []) + (["admin"] if self.admin else [])

    def can_see(self, team_id: str | None, caseworker_id: str | None, area_id: str | None = None) -> bool:
        if self.admin or self.council:
            return True
        if self.caseworker_id is not None and caseworker_id == self.caseworker_id:
            return True
        return (team_id is not None and team_id in self.teams) or (area_id is not None and area_id in self.areas)

    def to_session(self) -> dict[str, Any]:
        return {"sub": self.subject, "name": self.name, "cw": self.caseworker_id, "teams": sorted(self.teams),
                "areas": sorted(self.areas), "council": self.council, "admin": self.admin}

    @classmethod
    def from_session(cls, data: Mapping[str, Any]) -> Staff:
        return cls(str(data["sub"]), str(data.get("name") or ""), data.get("cw"), frozenset(data.get("teams") or ()),
                   frozenset(data.get("areas") or ()), bool(data.get("council")), bool(data.get("admin")))


def staff_from_roles(subject: str, name: str, roles: Iterable[str], caseworker_id: str | None) -> Staff | None:
    teams: set[str] = set()
    areas: set[str] = set()
    council = admin = caseworker = False
    for role in roles:
        kind, _, scope = str(role).partition(":")
        if kind == "caseworker":
            caseworker = True
        elif kind == "manager" and scope.startswith("area:"):
            areas.add(scope.removeprefix("area:"))
        elif kind == "manager" and scope:
            teams.add(scope)
        elif kind == "manager":
            council = True
        elif kind == "admin":
            admin = True
    if not (caseworker or teams or areas or council or admin):
        return None
    return Staff(subject, name or subject, caseworker_id or subject if caseworker else None, frozenset(teams),
                 frozenset(areas), council, admin)


def staff_from_claims(claims: Mapping[str, Any], *, roles_claim: str, caseworker_claim: str,
                      mapping: Mapping[str, list[str]]) -> Staff | None:
    """The signed-in person from an ID token's claims (or the settings' mapping by subject or email)."""
    subject = str(claims.get("sub") or "")
    if not subject:
        return None
    roles: Any = claims.get(roles_claim)
    if isinstance(roles, str):
        roles = roles.split()
    if not roles:
        roles = mapping.get(subject) or mapping.get(str(claims.get("email") or "")) or []
    name = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or subject)
    cw = claims.get(caseworker_claim)
    return staff_from_roles(subject, name, roles, str(cw) if cw else None)
