"""VoIPBin's REST API, the one way to speak into a call outside a `fetch` (own-LLM mode's answers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import httpx

from callmemory.observability.logs import describe_error

log = logging.getLogger(__name__)


class VoipbinApi:
    def __init__(self, http: httpx.AsyncClient, *, attempts: int, backoff_s: float = 0.2) -> None:
        # `http` carries the base URL, the access key (as a Bearer header, so it never shows up in a
        # logged URL) and the per-attempt timeout.
        self._http = http
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def talk(self, call_id: str, options: Mapping[str, str]) -> bool:
        """`POST /calls/{id}/talk`; retried on 5xx and network errors. False (logged) if it failed."""
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._http.post(f"calls/{call_id}/talk", json=dict(options))
            except httpx.HTTPError as exc:
                log.warning("VoIPBin talk to call %s, attempt %d: %s", call_id, attempt, describe_error(exc))
            else:
                if response.is_success:
                    return True
                if response.status_code < 500:
                    # Our request is wrong (or the call is gone): repeating it will not help.
                    # The status only: VoIPBin's error body may quote the text it was asked to say.
                    log.error("VoIPBin refused talk to call %s: HTTP %d", call_id, response.status_code)
                    return False
                log.warning("VoIPBin talk to call %s, attempt %d: %d", call_id, attempt, response.status_code)
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff_s * attempt)
        log.error(
            "VoIPBin talk to call %s failed after %d attempts; the caller heard nothing",
            call_id,
            self._attempts,
        )
        return False
