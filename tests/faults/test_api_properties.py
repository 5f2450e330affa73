"""Property-based tests of every service's HTTP API (issue 13, item 7): schemathesis generates
requests from each running service's own OpenAPI document (intake's webhook, the deadlines read
API, the notifier's subscriptions and GOV.UK Notify callbacks), valid and invalid, and no answer
may be a server error (schemathesis' ``not_a_server_error``). Bounded: a few examples per
operation, about a minute in all. Requests carry valid credentials (webhooks are signed), so the
handlers behind authentication are exercised too."""

from __future__ import annotations

import json
import time
from collections import Counter
from itertools import islice
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from shared.contracts import CASE_EVENT_TYPES
from tests.faults.conftest import FIGURES
from tests.faults.pipeline import (
    ADMIN_TOKEN,
    API_TOKEN,
    CALLBACK_TOKEN,
    SERVICES,
    WEBHOOK_SECRET,
    WEBHOOK_SOURCE,
)

pytestmark = [pytest.mark.infra, pytest.mark.faults]
EXAMPLES = 10  # generated per operation (fewer where the inputs run out)
COVERAGE_CASES = 20  # schemathesis' coverage cases per operation, at most

# Intake reads its body itself (one event or an array), so its OpenAPI document has no body schema:
# the canonical event's shape is given here, loosely, so that schemathesis sends near-misses too.
EVENT_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string"},
        "source": {"type": "string"},
        "type": {"type": "string", "enum": sorted(CASE_EVENT_TYPES)},
        "subject": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "data": {"type": "object", "properties": {"occurred_on": {"type": "string", "format": "date"}}},
    },
}
WEBHOOK_BODY = {"content": {"application/json": {"schema": {"anyOf": [EVENT_BODY, {"type": "array",
                                                                                      "items": EVENT_BODY}]}}}}


def sign(body: bytes) -> dict[str, str]:
    from services.intake.entrypoints.http import sign as intake_sign

    timestamp = str(int(time.time()))
    return {"X-EHC-Source": WEBHOOK_SOURCE, "X-EHC-Timestamp": timestamp,
            "X-EHC-Signature": intake_sign(WEBHOOK_SECRET, timestamp, body), "Content-Type": "application/json"}


def credentials(service: str, path: str) -> dict[str, str]:
    if service == "deadlines":
        return {"Authorization": f"Bearer {API_TOKEN}"}
    if service == "notifier":
        return {"Authorization": f"Bearer {CALLBACK_TOKEN if 'callbacks' in path else ADMIN_TOKEN}"}
    return {}


def load_schema(service: str, base_url: str) -> Any:
    raw = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    if service == "intake":
        raw["paths"]["/v1/events"]["post"]["requestBody"] = WEBHOOK_BODY
    return schemathesis.openapi.from_dict(raw)


def exercise(service: str, base_url: str, ran: Counter[str], failures: list[str]) -> None:
    """Every operation: schemathesis' coverage cases (boundaries, wrong types, missing and unknown
    parameters; deterministic) and then Hypothesis-generated ones (derandomized, so a run repeats)."""
    schema = load_schema(service, base_url)

    def check(case: Any, label: str) -> None:
        if service == "intake":
            body = json.dumps(case.body).encode() if isinstance(case.body, dict | list) else b""
            response: Any = httpx.post(f"{base_url}{case.formatted_path}", content=body, headers=sign(body),
                                       timeout=30)
        else:
            response = case.call(base_url=base_url, headers=credentials(service, case.path), timeout=30)
        ran[label] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (Exception, BaseExceptionGroup) as exc:  # report every server error (no shrinking)
            failures.append(f"{service} {case.method} {case.formatted_path} {case.query or ''}: "
                            f"{type(exc).__name__}: {str(exc)[:300]}")

    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{service} {operation.method.upper()} {operation.path}"
        coverage = schema.iter_coverage_cases(operation, generation_modes=list(GenerationMode),
                                              generation_config=schema.config.generation_for(operation=operation))
        for case in islice(coverage, COVERAGE_CASES):
            check(case, label)

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def generated(case: Any) -> None:
            check(case, label)  # noqa: B023 (run at once, in this iteration)

        generated()


async def test_no_generated_request_gets_a_server_error(pipeline) -> None:
    import asyncio

    async with pipeline() as p:
        await p.start_all()
        ran: Counter[str] = Counter()
        failures: list[str] = []
        t0 = time.monotonic()
        for service in SERVICES:
            base_url = f"http://127.0.0.1:{p.replicas[service][0].http_port}"
            await asyncio.to_thread(exercise, service, base_url, ran, failures)
        FIGURES.append({"test": p.name, "api_cases": sum(ran.values()), "api_operations": len(ran),
                        "api_server_errors": len(failures), "api_seconds": round(time.monotonic() - t0, 1),
                        "problems": failures[:20]})
        assert sum(ran.values()) >= len(ran) * 5, ran
        assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:20])
