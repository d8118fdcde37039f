"""Plays the telephony platform: seed-format webhook events against the app under test."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import httpx

from callmemory.platforms.seed import signing

_ids = itertools.count(1)


@dataclass
class Phone:
    http: httpx.AsyncClient
    caller: str = "+14155551234"
    bot: str | None = "+14155550000"
    webhook_secret: str | None = None  # the service's CALLMEMORY_WEBHOOK_SECRET: every event is signed

    async def send(self, event: dict[str, Any]) -> httpx.Response:
        if self.webhook_secret is None:
            return await self.http.post("/webhook/call", json=event)
        body = json.dumps(event).encode()
        headers = signing.signed_headers(self.webhook_secret.encode(), body)
        return await self.http.post("/webhook/call", content=body, headers=headers)

    async def ring(self, call_id: str | None = None, *, verified: bool = False) -> tuple[str, str]:
        """Start a call, with the platform vouching for the caller's number if `verified`; returns
        (call id, greeting)."""
        call_id = call_id or f"call-{next(_ids)}"
        event: dict[str, Any] = {"type": "call.ringing", "call_id": call_id, "from": self.caller}
        if self.bot is not None:
            event["to"] = self.bot
        if verified:
            event["caller_verified"] = True
        response = await self.send(event)
        assert response.status_code == 200, response.text
        return call_id, said(response.json())

    async def say(self, call_id: str, speech: str) -> str:
        response = await self.send(
            {"type": "call.speech_recognized", "call_id": call_id, "from": self.caller, "speech": speech}
        )
        assert response.status_code == 200, response.text
        return said(response.json())

    async def hang_up(self, call_id: str) -> dict[str, Any]:
        response = await self.send({"type": "call.hangup", "call_id": call_id, "from": self.caller})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def verify(self, call_id: str) -> str:
        """The bot verified the caller during the call; returns the answer's status."""
        response = await self.send({"type": "call.caller_verified", "call_id": call_id, "from": self.caller})
        assert response.status_code == 200, response.text
        status: str = response.json()["status"]
        return status

    async def call(self, *speech: str, verified: bool = False) -> tuple[str, list[str]]:
        """A whole call: ring, say each line, hang up. Returns the call id and everything the bot said."""
        call_id, greeting = await self.ring(verified=verified)
        heard = [greeting]
        for line in speech:
            heard.append(await self.say(call_id, line))
        await self.hang_up(call_id)
        return call_id, heard


def said(body: dict[str, Any]) -> str:
    actions = body["actions"]
    assert [a["type"] for a in actions] == ["talk", "listen"], actions
    text: str = actions[0]["text"]
    return text
