"""Who may call the seed webhook: a request signed with CALLMEMORY_WEBHOOK_SECRET, or one carrying
CALLMEMORY_WEBHOOK_TOKEN as a bearer token. Checked on the raw body, before anything parses it."""

from __future__ import annotations

import hmac
import logging
import time

from starlette.requests import Request

from callmemory.core.errors import Unauthorized
from callmemory.platforms.seed import signing
from callmemory.settings import Settings

log = logging.getLogger(__name__)

UNAUTHENTICATED = (
    "the seed webhook /webhook/call is UNAUTHENTICATED: anyone who can reach it can hear callers' last "
    "topics and write into their memory; set CALLMEMORY_WEBHOOK_SECRET (production refuses to start without)"
)


def announce(settings: Settings) -> None:
    """Say at start, in every web worker's log, when the seed webhook is open to anyone."""
    if not settings.webhook_authenticated:
        log.warning(UNAUTHENTICATED)


def authenticate_seed(request: Request, body: bytes, settings: Settings) -> None:
    """Raise Unauthorized unless the request is signed or carries the token; open when neither is set."""
    if not settings.webhook_authenticated:
        return
    problem = _problem(request, body, settings)
    if problem is not None:
        log.warning("seed webhook request refused: %s", problem)
        raise Unauthorized(problem)


def _problem(request: Request, body: bytes, settings: Settings) -> str | None:
    token, secret = settings.webhook_token, settings.webhook_secret
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if token is not None and scheme.lower() == "bearer":
        valid = hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())
        return None if valid else "the bearer token is not valid"
    if secret is None:
        return "send the webhook token as `Authorization: Bearer <token>`"
    return signing.signature_problem(
        secret.get_secret_value().encode(),
        body,
        request.headers.get(signing.SIGNATURE_HEADER),
        now=time.time(),
        tolerance_s=settings.webhook_tolerance_s,
    )
