"""Writes services/deadlines/adapters/event_structs.py: the shared pydantic contracts compiled into msgspec
Structs, so that the command line reads events without importing pydantic (issue 12).

    .venv/bin/python -m services.deadlines.adapters.event_structs_build   # after changing shared/contracts

Each event type becomes a Struct tagged by ``type`` with the model's own fields, types, constraints and
defaults, that only ever *accepts less* than the model: a field whose type or validator is not
understood here sends its event type to pydantic every time (left out of the module). A string
pattern is not given to msgspec (it would call Python's ``re`` per value): it is listed beside the
Struct and checked after decoding (event_lines.fast_record). ``tests/deadlines/unit/test_event_structs.py``
fails when the module is not what this writes from the contracts of the day.
"""

from __future__ import annotations

import sys
import types
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import MaxLen, MinLen
from pydantic import BaseModel

from shared import case_event_codes
from shared.contracts import EVENT_MODELS
from shared.contracts.envelope import _aware

TARGET = Path(__file__).with_name("event_structs.py")


class _Unknown(Exception):
    """A type or constraint the fast path does not know: that event type always goes to pydantic."""


_STRING_CONSTRAINTS = ("StringConstraints", "_PydanticGeneralMetadata")  # pydantic's, from Field(pattern=...)
_AWARE_DATETIME = "<aware datetime>"  # the envelope's time: a string in the Struct, read by event_lines._timestamp


def _settings(constraint: Any) -> list[str]:
    """The names of the settings a constraint object sets (not None)."""
    names = getattr(constraint, "__dataclass_fields__", None) or getattr(constraint, "__dict__", {})
    return [name for name in names if getattr(constraint, name, None) is not None]


def _spec_for(annotation: Any, metadata: list[Any]) -> tuple[str, str | None]:
    """(the source of the msgspec type that accepts no more than pydantic does for a field, its
    pattern or None), or _Unknown."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        if metadata:
            raise _Unknown(annotation)
        inner = next(a for a in args if a is not type(None))
        spec, pattern = _spec_for(inner.__origin__, list(inner.__metadata__)) if hasattr(inner, "__metadata__") \
            else _spec_for(inner, [])  # Optional[Annotated[str, constraints]] or Optional[X]
        return f"{spec} | None", pattern
    if annotation is date and not metadata:
        return "date", None
    if annotation is datetime and [getattr(m, "func", None) for m in metadata] == [_aware]:
        return _AWARE_DATETIME, None
    if annotation is bool and not metadata:
        return "bool", None
    if origin is Literal and not metadata and all(type(a) is str for a in args):
        return f"Literal[{', '.join(repr(a) for a in args)}]", None
    if isinstance(annotation, type) and issubclass(annotation, Enum) and not metadata:
        if not all(type(m.value) is str for m in annotation) or \
                getattr(case_event_codes, annotation.__name__, None) is not annotation:
            raise _Unknown(annotation)
        return annotation.__name__, None
    if annotation is str:
        limits: dict[str, Any] = {}
        for m in metadata:
            for name in ("min_length", "max_length", "pattern"):
                if getattr(m, name, None) is not None:
                    limits[name] = getattr(m, name)
            known = isinstance(m, MinLen | MaxLen) or type(m).__name__ in _STRING_CONSTRAINTS
            extra = [k for k in _settings(m) if k not in ("min_length", "max_length", "pattern")] if known else []
            if not known or extra:
                raise _Unknown(m)
        pattern = limits.pop("pattern", None)
        if not limits:
            return "str", pattern
        meta = ", ".join(f"{name}={limits[name]!r}" for name in ("min_length", "max_length") if name in limits)
        return f"Annotated[str, Meta({meta})]", pattern
    if origin is list and args == (str,) and not metadata:
        return "list[str]", None
    raise _Unknown(annotation)


def _struct_fields(model: type[BaseModel], skip: tuple[str, ...] = ()
                   ) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str]]]:
    """(name, type source, default source or None when required) of every field of a model without
    validators of its own, and the (name, pattern) of its fields with a pattern."""
    decorators = model.__pydantic_decorators__
    if any(getattr(decorators, kind) for kind in ("validators", "field_validators", "root_validators",
                                                   "model_validators")):
        raise _Unknown(model)
    if model.model_config.get("extra") != "forbid" or model.model_config.get("strict"):
        raise _Unknown(model)
    out: list[tuple[str, str, str | None]] = []
    patterned = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        if field.alias not in (None, name) or field.validation_alias is not None:
            raise _Unknown(name)
        spec, pattern = _spec_for(field.annotation, list(field.metadata))
        if pattern is not None:
            patterned.append((name, pattern))
        if spec == _AWARE_DATETIME:
            if name != "time" or "data" not in skip:
                raise _Unknown(name)  # the envelope's time only
            spec = "str"
        if field.is_required():
            out.append((name, spec, None))
        elif field.default_factory is not None:
            if field.default_factory is not list:
                raise _Unknown(name)
            out.append((name, spec, "field(default_factory=list)"))
        elif field.default is None or type(field.default) in (str, bool):
            out.append((name, spec, repr(field.default)))
        else:
            raise _Unknown(name)
    return out, patterned


# gc=False: a decoded event holds strings, dates, enums and lists of strings, never itself, so the cyclic
# garbage collector need not track the two Structs decoded per line (dropped as soon as read).
_STRUCT_OPTIONS = "Struct, kw_only=True, forbid_unknown_fields=True, gc=False"


def _class_name(type_: str) -> str:
    return "".join(part.capitalize() for part in type_.removeprefix("ehc.").replace("_", ".").split("."))


def _struct_source(type_: str, model: type[BaseModel], patterns: dict[str, str], envelopes: dict[str, str]
                   ) -> tuple[str, str] | None:
    """(the source of one event type's two Structs, its entry in EVENTS), or None when some part of
    it is only pydantic's to judge. Event types with the same envelope fields share an envelope
    Struct (``envelopes``: its fields' source -> its source, in the order first met)."""
    try:
        envelope, envelope_patterns = _struct_fields(model, skip=("type", "data"))
        data, data_patterns = _struct_fields(model.model_fields["data"].annotation)
    except _Unknown:
        return None
    if [name for name, _ in envelope_patterns] != ["id", "subject", "supersedes"]:
        return None  # fast_record checks exactly these three envelope patterns
    required = {name for name, _, default in envelope if default is None}
    if not {"id", "subject", "time"} <= required or "supersedes" not in {f[0] for f in envelope} \
            or "supersedes" in required or ("occurred_on", "date", None) not in data:
        return None

    def pattern_name(pattern: str) -> str:
        return patterns.setdefault(pattern, f"PATTERN_{len(patterns) + 1}")

    def body(fields: list[tuple[str, str, str | None]]) -> str:
        return "".join(f"    {name}: {spec}{'' if default is None else f' = {default}'}\n"
                       for name, spec, default in fields)

    name = _class_name(type_)
    fields = body(envelope)
    if fields not in envelopes:
        envelopes[fields] = f"class Envelope{len(envelopes) + 1}({_STRUCT_OPTIONS}, tag_field=\"type\"):\n{fields}"
    base = envelopes[fields].split("(", 1)[0].removeprefix("class ")
    source = (f"class {name}Data({_STRUCT_OPTIONS}):\n{body(data)}\n\n"
              f"class {name}({base}, tag={type_!r}):\n    data: {name}Data\n")
    envelope_names = ", ".join(pattern_name(p) for _, p in envelope_patterns)
    data_checks = "".join(f"({field!r}, {pattern_name(p)}), " for field, p in data_patterns)
    return source, f"    {type_!r}: ({name}, ({envelope_names}), ({data_checks})),\n"


def render() -> str:
    """The source of event_structs.py from the contracts as they are now."""
    patterns: dict[str, str] = {}
    envelopes: dict[str, str] = {}
    compiled = [(type_, found) for type_, model in EVENT_MODELS.items()
                if (found := _struct_source(type_, model, patterns, envelopes)) is not None]
    codes = sorted({name for name in ("ExceptionCode", "OrderType", "ProviderKind")
                    if any(name in source for _, (source, _) in compiled)})
    pattern_lines = "".join(f"{name} = {pattern!r}\n" for pattern, name in patterns.items())
    return (
        "# ruff: noqa: E501\n"
        '"""GENERATED by services/deadlines/adapters/event_structs_build.py from the shared pydantic contracts:\n'
        "do not edit (run `python -m services.deadlines.adapters.event_structs_build` after changing them).\n\n"
        "One msgspec Struct a canonical event type, tagged by ``type``, accepting no more than the contract;\n"
        "EVENTS: type -> (Struct, the patterns of id, subject and supersedes, (data field, pattern), ...),\n"
        'the patterns to check after decoding (services/deadlines/adapters/event_lines.py).\n"""\n\n'
        "from datetime import date\n"
        "from typing import Annotated, Literal\n\n"
        "from msgspec import Meta, Struct, field\n\n"
        f"from shared.case_event_codes import {', '.join(codes)}\n\n"
        f"{pattern_lines}\n\n"
        + "\n\n".join([*envelopes.values(), *(source for _, (source, _) in compiled)])
        + "\n\nEVENTS: dict[str, tuple[type[Struct], tuple[str, str, str], tuple[tuple[str, str], ...]]] = {\n"
        + "".join(entry for _, (_, entry) in compiled)
        + "}\n"
    )


def main() -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
