"""Plays VoIPBin: its fetch requests and signed event deliveries, built from the documented shapes, and a
local stub of its REST API that records what callmemory asked it to say.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from callmemory.devtools.local_server import served
from callmemory.platforms.voipbin import wire as voipbin
from callmemory.platforms.voipbin.standin import TALK_PATH, TalkStandIn

WEBHOOK_SECRET = "whsec-test-0123"
FETCH_TOKEN = "fetch-token-4567"
ACCESS_KEY = "vb-access-key"
OWN_LLM_BOT = "+15559876543"
MANAGED_BOT = "+15559876500"
AI_ID = "a1b2c3d4-0000-4000-8000-00000000000a"
CALLER = "+15551234567"


# VoIPBin's REST API for one test, authenticating and refusing as VoIPBin's api-manager does.
FakeVoipbinApi = TalkStandIn


def fake_voipbin_api() -> FakeVoipbinApi:
    return TalkStandIn(access_key=ACCESS_KEY)


class VoipbinApiServer:
    """Serves whichever FakeVoipbinApi is in `.api`, on a real local port."""

    def __init__(self) -> None:
        self.api = fake_voipbin_api()
        self.base_url = ""

    async def _talk(self, request: Request) -> Response:
        return await self.api.talk(request)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[VoipbinApiServer]:
        app = Starlette(routes=[Route(TALK_PATH, self._talk, methods=["POST"])])
        async with served(app, lifespan="off") as url:
            self.base_url = f"{url}/v1.0"
            yield self


def _offset(into: timedelta) -> str:
    """A `tm_transcript`: Go's zero time plus the offset into the transcription, as VoIPBin prints it."""
    minutes, seconds = divmod(into.total_seconds(), 60)
    return f"0001-01-01 00:{int(minutes):02d}:{seconds:09.6f}"


def _tm(at: datetime, *, rfc3339: bool = True) -> str:
    """Both of VoIPBin's time formats occur; a call's events use both."""
    if rfc3339:
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass
class ScriptedCall:
    """One VoIPBin call and the events it makes, in the shapes VoIPBin's source produces."""

    caller: str = CALLER
    bot: str = OWN_LLM_BOT
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    activeflow_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    transcribe_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # After the fetch's greeting (recorded at the server's now), so turns sort after it.
    start: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(seconds=1))
    outgoing: bool = False  # the bot calls the caller: VoIPBin's source is then the bot's number
    step: timedelta = timedelta(seconds=1)  # between one event's time and the next's
    _tick: int = 0

    @property
    def source(self) -> str:
        return self.bot if self.outgoing else self.caller

    @property
    def destination(self) -> str:
        return self.caller if self.outgoing else self.bot

    @property
    def direction(self) -> str:
        return "outgoing" if self.outgoing else "incoming"

    def _next_time(self) -> datetime:
        self._tick += 1
        return self.start + self._tick * self.step

    def call_event(self, kind: str, status: str, **extra: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.call_id,
            "customer_id": "5e4a0680-804e-11ec-8477-2fea5968d85b",
            "flow_id": "d157ce07-0360-4cad-9007-c8ab89fccf9c",
            "activeflow_id": self.activeflow_id,
            "type": "flow",
            "master_call_id": voipbin.ZERO_UUID,
            "chained_call_ids": [],
            "source": {"type": "tel", "target": self.source, "target_name": "", "name": "", "detail": ""},
            "destination": {"type": "tel", "target": self.destination},
            "status": status,
            "direction": self.direction,
            "tm_create": _tm(self.start),
            "tm_update": _tm(self._next_time()),
            **extra,
        }
        return {"type": kind, "data": data}

    def created(self) -> dict[str, Any]:
        return self.call_event("call_created", "dialing")

    def progressing(self) -> dict[str, Any]:
        return self.call_event("call_progressing", "progressing", tm_progressing=_tm(self.start))

    def hangup(self, reason: str = "normal") -> dict[str, Any]:
        return self.call_event(
            "call_hangup",
            "hangup",
            hangup_by="remote",
            hangup_reason=reason,
            tm_hangup=_tm(self._next_time()),
        )

    def transcribe_created(self) -> dict[str, Any]:
        return {
            "type": "transcribe_created",
            "data": {
                "id": self.transcribe_id,
                "reference_type": "call",
                "reference_id": self.call_id,
                "activeflow_id": self.activeflow_id,
                "status": "progressing",
                "language": "en-US",
                "direction": "in",
                "tm_create": _tm(self.start, rfc3339=False),
            },
        }

    def transcript(self, message: str, direction: str = "in") -> dict[str, Any]:
        """One recognised sentence, said after every transcript made before it by this call."""
        said = self._next_time()
        return {
            "type": "transcript_created",
            "data": {
                "id": str(uuid.uuid4()),
                "customer_id": "5e4a0680-804e-11ec-8477-2fea5968d85b",
                "transcribe_id": self.transcribe_id,
                "direction": direction,
                "message": message,
                "tm_transcript": _offset(said - self.start),
                "tm_create": _tm(said + timedelta(milliseconds=700), rfc3339=False),
            },
        }

    def ai_message(self, role: str, content: str) -> dict[str, Any]:
        return {
            "type": "aimessage_created",
            "data": {
                "id": str(uuid.uuid4()),
                "aicall_id": str(uuid.uuid4()),
                "activeflow_id": self.activeflow_id,
                "role": role,
                "content": content,
                "direction": "incoming" if role == "user" else "outgoing",
                "tm_create": _tm(self._next_time()),
            },
        }

    def summary(self, content: str) -> dict[str, Any]:
        return {
            "type": "summary_created",
            "data": {
                "id": str(uuid.uuid4()),
                "reference_type": "call",
                "reference_id": self.call_id,
                "activeflow_id": self.activeflow_id,
                "status": "done",
                "language": "en-US",
                "content": content,
            },
        }


@dataclass
class Voipbin:
    """What VoIPBin does to callmemory: fetches from a flow, and signed event deliveries."""

    http: httpx.AsyncClient
    api: FakeVoipbinApi
    secret: str = WEBHOOK_SECRET

    async def fetch(
        self, call: ScriptedCall, *, token: str = FETCH_TOKEN, method: str = "GET", activeflow: bool = True
    ) -> httpx.Response:
        # The README's template (destination, source, ?direction=), which VoIPBin fills in unencoded.
        url = f"/voipbin/fetch/{token}/{call.destination}/{call.source}?direction={call.direction}"
        body = {"reference_id": call.call_id}
        if activeflow:
            body["activeflow_id"] = call.activeflow_id
        return await self.http.request(
            method, url, content=json.dumps(body), headers={"content-type": "application/json; charset=utf-8"}
        )

    async def actions(self, call: ScriptedCall, *, activeflow: bool = True) -> list[dict[str, Any]]:
        response = await self.fetch(call, activeflow=activeflow)
        assert response.status_code == 200, response.text
        actions: list[dict[str, Any]] = response.json()
        return actions

    async def deliver(self, event: dict[str, Any], *, signature: str | None = None) -> httpx.Response:
        if event["type"] == "call_hangup":
            self.api.hung_up(event["data"]["id"])  # VoIPBin ends the call before it reports the hangup
        return await self.deliver_body(json.dumps(event).encode(), signature=signature)

    async def deliver_body(self, body: bytes, *, signature: str | None = None) -> httpx.Response:
        """A delivery of exactly these bytes, signed unless `signature` is given."""
        header = signature if signature is not None else voipbin.signature(self.secret.encode(), body)
        return await self.http.post(
            "/voipbin/events",
            content=body,
            headers={"content-type": "application/json", voipbin.SIGNATURE_HEADER: header},
        )

    async def deliver_retrying(self, event: dict[str, Any]) -> str:
        """One delivery with VoIPBin's retry: again on 5xx (VoIPBin waits 1 s; here a moment will do)."""
        for _ in range(20):
            response = await self.deliver(event)
            if response.status_code < 500:
                assert response.status_code == 200, response.text
                status: str = response.json()["status"]
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"{event['type']} was never accepted")

    async def deliver_all(self, events: list[dict[str, Any]]) -> list[str]:
        outcomes = []
        for event in events:
            response = await self.deliver(event)
            assert response.status_code == 200, response.text
            outcomes.append(response.json()["status"])
        return outcomes


def greeting_of(actions: list[dict[str, Any]]) -> str:
    text: str = next(a for a in actions if a["type"] == "talk")["option"]["text"]
    return text


def brief_of(actions: list[dict[str, Any]]) -> str:
    value: str = next(a for a in actions if a["type"] == "variable_set")["option"]["value"]
    return value


async def archived(sql: Callable[..., Any], call: ScriptedCall) -> list[tuple[str, str]]:
    """The call's archived turns as (role, text), in order."""
    rows = await sql(
        "SELECT t.role, t.text FROM turns t JOIN calls c ON c.id = t.call_id "
        "WHERE c.external_id = :id ORDER BY t.seq",
        id=call.call_id,
    )
    return [(r.role, r.text) for r in rows]
