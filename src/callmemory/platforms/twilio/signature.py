"""`X-Twilio-Signature`: every Twilio request is signed with the account's Auth Token.

Twilio signs the URL it requested, as it requested it. Behind a proxy or TLS terminator the service sees
another scheme, host or port, so the URL is rebuilt on the public address it is configured with; the
path and query (the turn number of a gather) are the request's own, verbatim.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from starlette.requests import Request
from twilio.request_validator import RequestValidator

from callmemory.core.errors import Forbidden

log = logging.getLogger(__name__)

HEADER: Final = "X-Twilio-Signature"

# Twilio's documented rule signs every posted parameter, and a request signed so is checked so first.
# Others report that Twilio adds these two to an incoming call's request after signing it (every one of
# their failures carried StirVerstat): such a request, whose signature covers all the rest, is Twilio's
# all the same. A value changed in a request whose signature did cover it is still refused.
_ADDED_AFTER_SIGNING: Final = frozenset({"StirVerstat", "CallToken"})


def requested_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio requested: `public_url` (when set) with this request's path and query."""
    if public_url is None:
        return str(request.url)
    query = request.url.query
    return public_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def check(request: Request, params: Mapping[str, str], token: str, public_url: str | None) -> None:
    """Return if the request is Twilio's, else raise Forbidden: nothing of it may be acted on."""
    signature = request.headers.get(HEADER)
    if signature is None:
        log.warning("Twilio request without %s refused", HEADER)
        raise Forbidden(f"`{HEADER}` is missing")
    if not _signed(RequestValidator(token), requested_url(request, public_url), params, signature):
        log.warning("Twilio request with a wrong signature refused")
        raise Forbidden(
            f"`{HEADER}` does not match: is CALLMEMORY_TWILIO_AUTH_TOKEN the account's primary Auth Token, "
            "and CALLMEMORY_TWILIO_PUBLIC_URL the address Twilio calls?"
        )


def _signed(validator: RequestValidator, url: str, params: Mapping[str, str], signature: str) -> bool:
    if validator.validate(url, params, signature):
        return True
    signed = {name: value for name, value in params.items() if name not in _ADDED_AFTER_SIGNING}
    return len(signed) < len(params) and bool(validator.validate(url, signed, signature))
