"""`callmemory simulate --format voipbin`: one own-LLM call as VoIPBin makes it.

The flow's fetch and the events VoIPBin sends, in the shapes its source produces (see wire.py), signed as
VoIPBin signs them; the answers arrive at a stand-in for VoIPBin's talk API (standin.py) that this serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from callmemory.devtools.local_server import served
from callmemory.platforms.base import Dial, Phone, SimulationError, problem
from callmemory.platforms.voipbin import wire as voipbin
from callmemory.platforms.voipbin.standin import TalkStandIn
from callmemory.settings import Settings


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fresh_id() -> str:
    return str(uuid.uuid4())


@dataclass
class VoipbinCall:
    caller: str
    bot: str
    call_id: str = field(default_factory=_fresh_id)
    activeflow_id: str = field(default_factory=_fresh_id)
    transcribe_id: str = field(default_factory=_fresh_id)

    def fetch(self, token: str) -> tuple[str, bytes]:
        """The flow's fetch action: its URL (numbers substituted unencoded, as VoIPBin does) and body."""
        body = {"reference_id": self.call_id, "activeflow_id": self.activeflow_id}
        return f"/voipbin/fetch/{token}/{self.bot}/{self.caller}", json.dumps(body).encode()

    def _call_event(self, kind: str, status: str, **extra: Any) -> dict[str, Any]:
        data = {
            "id": self.call_id,
            "activeflow_id": self.activeflow_id,
            "type": "flow",
            "master_call_id": voipbin.ZERO_UUID,
            "source": {"type": "tel", "target": self.caller},
            "destination": {"type": "tel", "target": self.bot},
            "status": status,
            "direction": "incoming",
            "tm_update": _now(),  # part of the delivery's dedup key: distinct per event
            **extra,
        }
        return {"type": kind, "data": data}

    def created(self) -> dict[str, Any]:
        return self._call_event("call_created", "dialing")

    def progressing(self) -> dict[str, Any]:
        return self._call_event("call_progressing", "progressing", tm_progressing=_now())

    def hangup(self) -> dict[str, Any]:
        return self._call_event("call_hangup", "hangup", hangup_by="remote", hangup_reason="normal")

    def transcribe_created(self) -> dict[str, Any]:
        data = {
            "id": self.transcribe_id,
            "reference_type": "call",
            "reference_id": self.call_id,
            "activeflow_id": self.activeflow_id,
            "status": "progressing",
            "direction": "in",
        }
        return {"type": "transcribe_created", "data": data}

    def transcript(self, message: str) -> dict[str, Any]:
        data = {
            "id": _fresh_id(),
            "transcribe_id": self.transcribe_id,
            "direction": "in",
            "message": message,
            "tm_create": _now(),
        }
        return {"type": "transcript_created", "data": data}

    @staticmethod
    def signed(event: dict[str, Any], secret: str | None) -> tuple[bytes, dict[str, str]]:
        """The delivery's body and headers; signed when the service expects a webhook secret."""
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json"}
        if secret is not None:
            headers[voipbin.SIGNATURE_HEADER] = voipbin.signature(secret.encode(), body)
        return body, headers


class TalkApi:
    """VoIPBin's talk API, played by its stand-in: what the service speaks into each call, in order."""

    def __init__(self) -> None:
        self._said: dict[str, asyncio.Queue[str]] = {}
        self.standin = TalkStandIn(access_key=None, on_talk=self._heard)

    def _heard(self, call_id: str, text: str) -> None:
        self._queue(call_id).put_nowait(text)

    def _queue(self, call_id: str) -> asyncio.Queue[str]:
        return self._said.setdefault(call_id, asyncio.Queue())

    async def next_said(self, call_id: str, timeout_s: float) -> str:
        try:
            return await asyncio.wait_for(self._queue(call_id).get(), timeout_s)
        except TimeoutError as exc:
            refused = [status for call, status in self.standin.refused if call == call_id]
            if refused:
                raise SimulationError(
                    f"the VoIPBin stand-in refused the service's talk request with HTTP {refused[-1]}: is "
                    "CALLMEMORY_VOIPBIN_ACCESS_KEY the same for the service and for simulate?"
                ) from exc
            raise SimulationError(
                f"no talk request reached the VoIPBin stand-in within {timeout_s:.0f} s: is the service's "
                "CALLMEMORY_VOIPBIN_API_URL pointing at it, with a CALLMEMORY_VOIPBIN_ACCESS_KEY set?"
            ) from exc


@dataclass
class VoipbinPhone:
    """VoIPBin in own-LLM mode: the flow's fetch, then signed events; answers arrive at the talk API."""

    http: httpx.AsyncClient
    call: VoipbinCall
    fetch_token: str
    webhook_secret: str | None
    talks: TalkApi
    answer_timeout_s: float

    async def _deliver(self, event: dict[str, Any]) -> str:
        body, headers = self.call.signed(event, self.webhook_secret)
        response = await self.http.post("/voipbin/events", content=body, headers=headers)
        if response.status_code != 200:
            raise SimulationError(f"the service refused {event['type']}: {problem(response)}")
        return str(response.json().get("status"))

    async def ring(self) -> str:
        url, body = self.call.fetch(self.fetch_token)
        response = await self.http.post(url, content=body, headers={"content-type": "application/json"})
        if response.status_code != 200:
            raise SimulationError(f"the fetch URL answered {problem(response)}")
        actions: list[dict[str, Any]] = response.json()
        if any(a.get("type") == "ai_talk" for a in actions):
            raise SimulationError(
                "this bot number runs in managed_ai mode (a VoIPBin AI talks); simulate plays own_llm bots"
            )
        for event in (self.call.created(), self.call.progressing(), self.call.transcribe_created()):
            await self._deliver(event)
        return " ".join(a["option"].get("text", "") for a in actions if a.get("type") == "talk")

    async def say(self, text: str) -> str:
        await self._deliver(self.call.transcript(text))
        return await self.talks.next_said(self.call.call_id, self.answer_timeout_s)

    async def hang_up(self) -> str:
        self.talks.standin.hung_up(self.call.call_id)  # VoIPBin ends the call before it reports it
        return await self._deliver(self.call.hangup())


def _fresh_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(24))


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@dataclass(frozen=True, slots=True)
class VoipbinSimulation:
    settings: Settings
    dial: Dial
    talks: TalkApi

    @classmethod
    async def start(
        cls, stack: contextlib.AsyncExitStack, settings: Settings, dial: Dial
    ) -> VoipbinSimulation:
        """Serve the talk API stand-in; a service started by simulate is configured to use it."""
        talks = TalkApi()
        port = 0 if dial.own_service else dial.standin_port
        try:
            url = await stack.enter_async_context(served(talks.standin.app, port=port, lifespan="off"))
        except OSError as exc:
            raise SimulationError(f"cannot serve the VoIPBin stand-in on port {port}: {exc}") from exc
        if dial.own_service:
            settings = settings.model_copy(
                update={
                    "voipbin_fetch_token": settings.voipbin_fetch_token or _fresh_secret(),
                    "voipbin_webhook_secret": settings.voipbin_webhook_secret or _fresh_secret(),
                    "voipbin_access_key": settings.voipbin_access_key or SecretStr("simulate"),
                    "voipbin_api_url": f"{url}/v1.0",
                }
            )
        else:
            print(f"VoIPBin REST API stand-in: {url}/v1.0", file=dial.err)
        talks.standin.access_key = _secret(settings.voipbin_access_key)
        return cls(settings, dial, talks)

    def phone(self, http: httpx.AsyncClient, url: str) -> Phone:
        s = self.settings
        if s.voipbin_fetch_token is None:
            raise SimulationError("set CALLMEMORY_VOIPBIN_FETCH_TOKEN to the service's fetch token")
        return VoipbinPhone(
            http,
            VoipbinCall(caller=self.dial.caller, bot=self.dial.bot),
            s.voipbin_fetch_token.get_secret_value(),
            _secret(s.voipbin_webhook_secret),
            self.talks,
            answer_timeout_s=s.llm_timeout_s + s.voipbin_api_timeout_s * s.voipbin_api_attempts + 5,
        )
