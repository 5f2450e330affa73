"""Issue 10: the short family link a text carries, ``<web base url>/f/<code>``: an unguessable
code (12 letters and digits: over 64 bits), kept only as an HMAC under the family link secret."""

from __future__ import annotations

import math

from shared.family_links import (
    SHORT_CODE_ALPHABET,
    SHORT_CODE_LENGTH,
    is_short_code,
    new_short_code,
    short_code_digest,
    short_link_length,
    short_link_url,
)

SECRET = "family-link-test-secret-0123456789abcdef"


def test_a_code_is_twelve_url_safe_characters_with_at_least_64_bits() -> None:
    codes = {new_short_code() for _ in range(2000)}
    assert len(codes) == 2000  # never the same twice in practice
    assert all(len(c) == SHORT_CODE_LENGTH == 12 and is_short_code(c) for c in codes)
    assert set("".join(codes)) <= set(SHORT_CODE_ALPHABET)
    assert len(set("".join(codes))) == len(SHORT_CODE_ALPHABET) == 62  # the whole alphabet is used
    assert SHORT_CODE_LENGTH * math.log2(len(SHORT_CODE_ALPHABET)) >= 64


def test_only_a_keyed_hash_of_a_code_is_kept() -> None:
    code = new_short_code()
    digest = short_code_digest(SECRET, code)
    assert len(digest) == 64 and code not in digest
    assert digest == short_code_digest(SECRET, code)
    assert digest != short_code_digest(SECRET + "x", code)  # another secret: another digest
    assert digest != short_code_digest(SECRET, new_short_code())


def test_anything_else_is_not_a_code() -> None:
    assert not is_short_code("")
    assert not is_short_code("abcdefghijk")  # 11
    assert not is_short_code("abcdefghijklm")  # 13
    assert not is_short_code("abcdefghijk-")
    assert not is_short_code("abcdefghijk\n")


def test_the_link_is_the_web_front_address_then_f_then_the_code() -> None:
    assert short_link_url("https://ehc.herts.gov.uk/", "AbCdEf123456") == "https://ehc.herts.gov.uk/f/AbCdEf123456"
    assert short_link_length("https://ehc.herts.gov.uk/") == len("https://ehc.herts.gov.uk/f/AbCdEf123456")


def test_every_message_to_a_family_carries_a_link_to_the_childs_timeline() -> None:
    """Emails the signed link (``timeline_url``), texts their short link (``link``), each kind and language."""
    from services.notifier.domain.messages import render
    from services.notifier.entrypoints.samples import CASES, COUNCIL

    signed = "https://ehc.herts.gov.uk/family/eyJjIjoiY2FzZS0xIn0.signed"
    for template, _, fields in CASES:
        for language in ("en", "cy"):
            context = {**COUNCIL, **fields, "timeline_url": signed}
            assert render(template, language, "sms", context).body.endswith(" " + COUNCIL["link"]), template
            assert signed in render(template, language, "email", context).body, (template, language)
