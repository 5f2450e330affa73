"""Who may read what in the deadlines read API: bearer tokens to principals, and each principal's
scope applied once, the same way, by every route (``restrict`` for SQL, ``Principal.sees`` for a
case already loaded, ``within_scope`` for an explicit filter outside it).

Bearer tokens map to a role, optionally scoped (settings ``api_tokens``): ``caseworker:<id>``
sees that caseworker's cases, ``manager`` or ``manager:<team_id>`` a team or all, ``admin`` all.
The tokens are checked when the API is built (a caseworker without an id, a manager with an empty
team, an unknown role: the service refuses to start) and looked up by their SHA-256, so the time a
request takes says nothing about how much of a token it guessed. 401: no token or an unknown one;
403: a filter outside the token's scope (another team or caseworker).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, Table

from shared.settings import SettingsError

Role = Literal["caseworker", "manager", "admin"]
_bearer = HTTPBearer(auto_error=False)
_SETTING = "EHC_DEADLINES__API_TOKENS"


@dataclass(frozen=True)
class Principal:
    role: Role
    scope: str | None  # caseworker_id for caseworkers, team_id for a team manager

    @property
    def everything(self) -> bool:
        """Sees the whole council (an admin, or a manager of every team)."""
        return self.role == "admin" or (self.role == "manager" and not self.scope)

    def sees(self, team_id: str | None, caseworker_id: str | None) -> bool:
        """Whether a case routed to this team and caseworker is within the scope."""
        if self.role == "caseworker":
            return caseworker_id == self.scope
        return self.everything or team_id == self.scope

    def restrict(self, q: Select[Any], table: Table) -> Select[Any]:
        """The query limited to the rows within the scope (``table`` has team_id and caseworker_id)."""
        if self.role == "caseworker":  # always scoped (checked at start)
            return q.where(table.c.caseworker_id == self.scope)
        if not self.everything:
            return q.where(table.c.team_id == self.scope)
        return q


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def principals(tokens: dict[str, str]) -> dict[bytes, Principal]:
    """Each configured token's principal, keyed by the token's SHA-256; :class:`SettingsError` (one line,
    naming the token by its position, never by its value) for a token the API cannot use."""
    found: dict[bytes, Principal] = {}
    for number, (token, grant) in enumerate(tokens.items(), start=1):
        where = f"{_SETTING}: token {number} of {len(tokens)}"
        role, colon, scope = (part.strip() for part in grant.partition(":"))
        if not token.strip():
            raise SettingsError(f"{where} is empty")
        if role == "caseworker" and not scope:
            raise SettingsError(f"{where}: a caseworker token is caseworker:<id> (the caseworker it belongs to)")
        if role == "manager" and colon and not scope:
            raise SettingsError(f"{where}: manager:<team> needs a team id (plain manager sees every team)")
        if role == "admin" and colon:
            raise SettingsError(f"{where}: admin takes no scope")
        if role not in ("caseworker", "manager", "admin"):
            raise SettingsError(f"{where} has no known role: use caseworker:<id>, manager, manager:<team> or admin")
        found[_digest(token)] = Principal(role, scope or None)  # type: ignore[arg-type]
    return found


def principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    known: dict[bytes, Principal] = request.app.state.principals
    who = known.get(_digest(credentials.credentials)) if credentials is not None else None
    if who is None:
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return who


def within_scope(who: Principal, team_id: str | None = None, caseworker_id: str | None = None) -> None:
    if who.role == "manager" and who.scope and team_id and team_id != who.scope:
        raise HTTPException(403, "this token sees one team's deadlines only")
    if who.role == "caseworker" and caseworker_id and caseworker_id != who.scope:
        raise HTTPException(403, "this token sees its own caseworker's deadlines only")


Who = Annotated[Principal, Depends(principal)]
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or not one of EHC_DEADLINES__API_TOKENS"},
    403: {"description": "A filter outside the token's scope (another team or caseworker)"},
}
