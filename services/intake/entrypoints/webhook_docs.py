"""The webhook's OpenAPI text: how to sign a request (the scheme itself is in ``http.sign``)."""

from __future__ import annotations

from typing import Any

EXAMPLE_SECRET = "example-secret-for-docs"
EXAMPLE_TIMESTAMP = "1767258000"
EXAMPLE_BODY = ('{"specversion":"1.0","id":"evt-0001","source":"cms/example","type":"ehc.request.received",'
                '"subject":"case-7f3a9c","time":"2026-01-01T09:00:00Z","datacontenttype":"application/json",'
                '"data":{"occurred_on":"2026-01-01","route":"request","requested_by":"parent"}}')
EXAMPLE_SIGNATURE = "sha256=b8cdaa46bcb98cd1a03dd38fe6da281542dc9e1633f35f94c2819f1ddb4a95d9"

WEBHOOK_DESCRIPTION = f"""\
One canonical case event (docs/contracts/case-event.schema.json) or a JSON array of them; or a source's
own messages, read through the mapping named for it in `EHC_INTAKE__WEBHOOK_MAPPINGS`.

**Signing.** Each source has a secret (`EHC_INTAKE__WEBHOOK_SECRETS`). Send `X-EHC-Source` (the
source's name), `X-EHC-Timestamp` (Unix seconds, within `EHC_INTAKE__WEBHOOK_MAX_SKEW_SECONDS` of
now) and `X-EHC-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`, where body is
the exact bytes sent. A signed request is accepted once (a replay gets 409).

Worked example: secret `{EXAMPLE_SECRET}`, timestamp `{EXAMPLE_TIMESTAMP}`, body
`{EXAMPLE_BODY}` gives `X-EHC-Signature: {EXAMPLE_SIGNATURE}`.

```sh
SIG=sha256=$(printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex | sed 's/^.* //')
curl -sS http://localhost:8001/v1/events -H 'Content-Type: application/json' \\
  -H "X-EHC-Source: cms-example" -H "X-EHC-Timestamp: $TS" -H "X-EHC-Signature: $SIG" --data-binary "$BODY"
```

```python
signature = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
```

Answers: 202 all accepted (durably in Kafka); 422 some rejected (listed; the others accepted); 401
unsigned, bad signature or stale timestamp; 409 replayed; 413 too large; 503 retry the same request.
"""

_HEADERS = [
    ("X-EHC-Source", "The source's name, a key of EHC_INTAKE__WEBHOOK_SECRETS.", "cms-example"),
    ("X-EHC-Timestamp", "Now, in Unix seconds.", EXAMPLE_TIMESTAMP),
    ("X-EHC-Signature", 'sha256= and the hex HMAC-SHA256 of timestamp + "." + body, keyed with the secret.',
     EXAMPLE_SIGNATURE),
]

WEBHOOK_OPENAPI: dict[str, Any] = {
    "parameters": [{"name": name, "in": "header", "required": True, "description": text,
                    "schema": {"type": "string"}, "example": example} for name, text, example in _HEADERS],
    "requestBody": {
        "required": True,
        "description": "One event or a JSON array of events, signed as sent.",
        "content": {"application/json": {"schema": {"oneOf": [{"type": "object"},
                                                              {"type": "array", "items": {"type": "object"}}]},
                                         "example": {"value": EXAMPLE_BODY}}},
    },
}
