"""One-line, human-readable descriptions of contract violations (for dead letters and CLIs)."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("tagged-union", "function-")))
        msg = err["msg"]
        if err["type"] == "union_tag_invalid":
            msg = f"unknown event type {err.get('ctx', {}).get('tag')!r}"
            loc = "type"
        elif err["type"] == "json_invalid":
            msg = "not valid JSON: " + str(err.get("ctx", {}).get("error", ""))
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
