"""A webhook service that does nothing: the floor that this machine and the benchmark's harness allow.

`load.py --service null` runs it in place of callmemory, under the same uvicorn workers, driver and stub
LLM. It answers each seed-format event with fixed actions, and for a speech event first makes the same
hop to the stub LLM that callmemory makes (one raw aiohttp request, no SDK): no memory, no Redis, no
Postgres, no prompt. Whatever latency it shows is the driver's, the stub's, uvicorn's and the machine's,
not callmemory's, so a target below it cannot be met by any service measured this way.
"""

from __future__ import annotations

import json
import os
from typing import Any

import aiohttp

ACTIONS = json.dumps({"actions": [{"type": "talk", "text": "Hello"}, {"type": "listen"}]}).encode()
ACK = json.dumps({"status": "ok"}).encode()
JSON_TYPE = {"content-type": "application/json"}
HEADERS = [(name.encode(), value.encode()) for name, value in JSON_TYPE.items()]

Message = dict[str, Any]


class NullService:
    def __init__(self) -> None:
        # Read when built: `event_cpu.py --service null` sets it before building one in its own process.
        self._llm_url = os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions"
        self._http: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = ACK if scope["path"] != "/webhook/call" else await self._event(json.loads(body))
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": answer})

    async def _event(self, event: Message) -> bytes:
        if event["type"] == "call.hangup":
            return ACK
        if event["type"] == "call.speech_recognized":
            assert self._http is not None
            prompt = {"model": "null", "messages": [{"role": "user", "content": event["speech"]}]}
            async with self._http.post(self._llm_url, data=json.dumps(prompt), headers=JSON_TYPE) as reply:
                await reply.read()
        return ACTIONS

    async def startup(self) -> None:
        self._http = aiohttp.ClientSession()

    async def shutdown(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = NullService()
