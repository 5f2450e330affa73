"""One-line, human-readable descriptions of contract violations (for dead letters and CLIs).

They name the field and the problem, never the value, so they are safe to log and to show.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_MESSAGES = {
    "missing": "is missing",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "date_from_datetime_parsing": "must be a real date as YYYY-MM-DD",
    "date_parsing": "must be a real date as YYYY-MM-DD",
    "date_type": "must be a real date as YYYY-MM-DD",
    "date_from_datetime_inexact": "must be a date without a time",
    "datetime_from_date_parsing": "must be an RFC 3339 date-time with a UTC offset",
    "datetime_parsing": "must be an RFC 3339 date-time with a UTC offset",
    "datetime_type": "must be an RFC 3339 date-time with a UTC offset",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "string_pattern_mismatch": "has characters or a shape that is not allowed",
    "list_type": "must be a list",
    "extra_forbidden": "is not a field of this event",
    "int_parsing": "must be a whole number",
}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and "." in parts[0]:  # the discriminating event type of a tagged union
        parts = parts[1:]
    return ".".join(p for p in parts if not p.startswith(("function-", "tagged-union")))


def _problem(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "union_tag_invalid":
        return f"unknown event type (expected one of the {len(str(ctx.get('expected_tags', '')).split(','))} "\
               "canonical types)"
    if kind == "json_invalid":
        return f"not valid JSON ({ctx.get('error', 'syntax error')})"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', 'the allowed values')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return _MESSAGES.get(kind, err["msg"].lower())


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for err in errors[:limit]:
        loc = _location(err["loc"])
        if err["type"] == "union_tag_invalid":
            loc = "type"
        problem = _problem(err)
        parts.append(f"{loc} {problem}" if loc and err["type"] == "missing" else
                     f"{loc}: {problem}" if loc else problem)
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)
