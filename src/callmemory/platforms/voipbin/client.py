"""VoIPBin's REST API, the one way to speak into a call outside a `fetch` (own-LLM mode's answers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from enum import StrEnum

import httpx

from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics

log = logging.getLogger(__name__)


class TalkOutcome(StrEnum):
    SPOKEN = "spoken"
    UNAUTHORIZED = "unauthorized"  # the access key was refused: a configuration error
    REFUSED = "refused"  # any other 4xx: our request is wrong, or the call is gone
    FAILED = "failed"  # 5xx or network errors on every attempt


def client(base_url: str, access_key: str, *, timeout_s: float) -> httpx.AsyncClient:
    """The HTTP client for VoIPBin's API, carrying the access key where VoIPBin reads one.

    VoIPBin's api-manager reads an access key only from the `accesskey` cookie or query parameter
    (bin-api-manager lib/middleware/authenticate.go). An `Authorization: Bearer` value, or a `token`
    cookie or parameter, is taken for a login JWT first and refused with 401, even next to a valid key.
    The cookie rather than the parameter: a URL is what HTTP libraries and proxies log.
    """
    cookie = {"Cookie": f"accesskey={access_key}"}
    return httpx.AsyncClient(base_url=base_url, headers=cookie, timeout=timeout_s)


class VoipbinApi:
    def __init__(
        self, http: httpx.AsyncClient, *, attempts: int, metrics: Metrics, backoff_s: float = 0.2
    ) -> None:
        # `http` carries the base URL, the access key (see client()) and the per-attempt timeout.
        self._http = http
        self._attempts = attempts
        self._metrics = metrics
        self._backoff_s = backoff_s
        self._key_refused = False

    async def talk(self, call_id: str, options: Mapping[str, str]) -> TalkOutcome:
        """`POST /calls/{id}/talk`; retried on 5xx and network errors only. Logged unless spoken."""
        outcome = await self._talk(call_id, options)
        self._metrics.voipbin_talks.labels(outcome=str(outcome)).inc()
        return outcome

    async def _talk(self, call_id: str, options: Mapping[str, str]) -> TalkOutcome:
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._http.post(f"calls/{call_id}/talk", json=dict(options))
            except httpx.HTTPError as exc:
                log.warning("VoIPBin talk to call %s, attempt %d: %s", call_id, attempt, describe_error(exc))
            else:
                if response.is_success:
                    return TalkOutcome.SPOKEN
                if response.status_code in (401, 403):
                    self._report_refused_key(response.status_code)
                    return TalkOutcome.UNAUTHORIZED
                if response.status_code < 500:
                    # Our request is wrong (or the call is gone): repeating it will not help.
                    # The status only: VoIPBin's error body may quote the text it was asked to say.
                    log.error("VoIPBin refused talk to call %s: HTTP %d", call_id, response.status_code)
                    return TalkOutcome.REFUSED
                log.warning("VoIPBin talk to call %s, attempt %d: %d", call_id, attempt, response.status_code)
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff_s * attempt)
        log.error(
            "VoIPBin talk to call %s failed after %d attempts; the caller heard nothing",
            call_id,
            self._attempts,
        )
        return TalkOutcome.FAILED

    def _report_refused_key(self, status: int) -> None:
        """Once per process: every later talk fails the same way, and the metric counts them."""
        if self._key_refused:
            return
        self._key_refused = True
        log.error(
            "configuration error: VoIPBin refused CALLMEMORY_VOIPBIN_ACCESS_KEY (HTTP %d): the key is "
            "wrong, expired or lacks permission on calls. No answer can be spoken into a call until it is "
            'fixed; callmemory_voipbin_talks_total{outcome="unauthorized"} counts the talks refused.',
            status,
        )
