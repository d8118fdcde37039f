"""`callmemory simulate --format seed`: one call in the seed format, signed as the service expects."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from callmemory.platforms.base import Phone, SimulationError, problem
from callmemory.platforms.seed import signing
from callmemory.settings import Settings


def _call_id() -> str:
    return f"sim-{uuid.uuid4().hex[:12]}"


@dataclass
class SeedPhone:
    """Every event to `/webhook/call`, the reply in the answer."""

    http: httpx.AsyncClient
    caller: str
    bot: str
    webhook_secret: str | None = None  # the service's CALLMEMORY_WEBHOOK_SECRET: events are signed
    webhook_token: str | None = None  # else its CALLMEMORY_WEBHOOK_TOKEN, sent as a bearer token
    call_id: str = field(default_factory=_call_id)

    async def _send(self, event: dict[str, Any]) -> dict[str, Any]:
        event = {"call_id": self.call_id, "from": self.caller, **event}
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json"}
        if self.webhook_secret is not None:
            headers = signing.signed_headers(self.webhook_secret.encode(), body)
        elif self.webhook_token is not None:
            headers["authorization"] = f"Bearer {self.webhook_token}"
        response = await self.http.post("/webhook/call", content=body, headers=headers)
        if response.status_code != 200:
            raise SimulationError(f"the service refused {event['type']}: {problem(response)}")
        answer: dict[str, Any] = response.json()
        return answer

    @staticmethod
    def _talk(answer: dict[str, Any]) -> str:
        return " ".join(a.get("text") or "" for a in answer.get("actions", []) if a.get("type") == "talk")

    async def ring(self) -> str:
        return self._talk(await self._send({"type": "call.ringing", "to": self.bot}))

    async def say(self, text: str) -> str:
        return self._talk(
            await self._send({"type": "call.speech_recognized", "speech": text, "to": self.bot})
        )

    async def hang_up(self) -> str:
        return str((await self._send({"type": "call.hangup", "reason": "caller_hung_up"})).get("status"))


@dataclass(frozen=True, slots=True)
class SeedSimulation:
    settings: Settings
    caller: str
    bot: str

    def phone(self, http: httpx.AsyncClient, url: str) -> Phone:
        secret, token = self.settings.webhook_secret, self.settings.webhook_token
        return SeedPhone(
            http,
            self.caller,
            self.bot,
            webhook_secret=secret.get_secret_value() if secret else None,
            webhook_token=token.get_secret_value() if token else None,
        )
