"""Signed seed webhooks: `X-Callmemory-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.

As Stripe and Slack sign theirs: the HMAC covers `<t>.<raw body>`, so a captured request cannot be
replayed with a fresh timestamp, and one replayed as it was is refused once `t` is older than the
tolerance. Several `v1=` entries may be sent (one per secret while a secret is being rotated); one
matching is enough. Nothing here touches a store.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Final

SIGNATURE_HEADER: Final = "X-Callmemory-Signature"
# ASCII digits only, and few enough that the arithmetic on them cannot overflow a float.
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,12}")


def _digest(secret: bytes, at: int, body: bytes) -> str:
    return hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, at: int) -> str:
    """The header value that signs `body` at unix time `at`."""
    return f"t={at},v1={_digest(secret, at, body)}"


def signed_headers(secret: bytes, body: bytes) -> dict[str, str]:
    """The headers of a JSON request signed now, as a platform sends it (simulate, tests, bench)."""
    return {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, body, int(time.time()))}


def signature_problem(
    secret: bytes, body: bytes, header: str | None, *, now: float, tolerance_s: float
) -> str | None:
    """Why the header does not sign the body within the tolerance, or None when it does."""
    if not header:
        return f"the {SIGNATURE_HEADER} header is missing"
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    stamps, signatures = fields.get("t", []), fields.get("v1", [])
    if len(stamps) != 1 or not _UNIX_SECONDS.fullmatch(stamps[0]) or not signatures:
        return f"the {SIGNATURE_HEADER} header is not of the form t=<unix seconds>,v1=<hex>"
    at = int(stamps[0])
    expected = _digest(secret, at, body).encode()
    # Every entry is compared, each in constant time, so the time taken tells nothing about the digest.
    matches = [hmac.compare_digest(s.encode(), expected) for s in signatures]
    if not any(matches):
        return f"the {SIGNATURE_HEADER} header does not match the body"
    if abs(now - at) > tolerance_s:
        age = int(now - at)
        return f"the signature's timestamp is {age} s old; at most {tolerance_s:g} s either way is accepted"
    return None
