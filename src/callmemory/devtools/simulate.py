"""`callmemory simulate`: phone the bot from a terminal, with this program playing the telephony platform.

One run is one call: it rings, sends each line as recognised speech, prints the bot's replies and hangs up
on end of input or `/hangup`. It talks HTTP to a service, either one already running or one it starts in
this process (`own_service`), so every event crosses the same routes a real platform's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final, Protocol, TextIO

import httpx
from pydantic import SecretStr

from callmemory.app import create_app
from callmemory.devtools.local_server import served
from callmemory.platforms.seed import signing
from callmemory.platforms.twilio import simulate as twilio
from callmemory.platforms.voipbin.simulate import VoipbinCall
from callmemory.platforms.voipbin.standin import TalkStandIn
from callmemory.settings import Settings

HANGUP: Final = "/hangup"


class SimulationError(RuntimeError):
    """The call could not go on; the message says why (printed, exit status 1)."""


@contextlib.asynccontextmanager
async def own_service(settings: Settings) -> AsyncIterator[str]:
    """The service itself (routes, lifespan, background tasks), on a free local port."""
    async with served(create_app(settings)) as url:
        yield url


def answers(url: str) -> bool:
    """Whether a callmemory service answers its liveness probe at `url`."""
    try:
        return httpx.get(f"{url.rstrip('/')}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- VoIPBin's REST API, as far as own-LLM mode uses it ------------------------------------------------
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


# -- the platforms ---------------------------------------------------------------------------------
class Platform(Protocol):
    async def ring(self) -> str: ...
    async def say(self, text: str) -> str: ...
    async def hang_up(self) -> str: ...


def _problem(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    if isinstance(body, dict) and "detail" in body:
        return f"{response.status_code} {body.get('error', '')}: {body['detail']}"
    return f"{response.status_code} {response.text[:200]}"


@dataclass
class SeedPlatform:
    """The seed webhook format: every event to `/webhook/call`, the reply in the answer."""

    http: httpx.AsyncClient
    caller: str
    bot: str
    call_id: str
    webhook_secret: str | None = None  # the service's CALLMEMORY_WEBHOOK_SECRET: events are signed
    webhook_token: str | None = None  # else its CALLMEMORY_WEBHOOK_TOKEN, sent as a bearer token

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
            raise SimulationError(f"the service refused {event['type']}: {_problem(response)}")
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


@dataclass
class VoipbinPlatform:
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
            raise SimulationError(f"the service refused {event['type']}: {_problem(response)}")
        return str(response.json().get("status"))

    async def ring(self) -> str:
        url, body = self.call.fetch(self.fetch_token)
        response = await self.http.post(url, content=body, headers={"content-type": "application/json"})
        if response.status_code != 200:
            raise SimulationError(f"the fetch URL answered {_problem(response)}")
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


# -- the terminal side ----------------------------------------------------------------------------
def read_lines(source: TextIO) -> asyncio.Queue[str | None]:
    """Lines of `source` as they come, then None at its end.

    A daemon thread rather than `asyncio.to_thread`: a read blocked on a terminal must not keep the
    process alive after Ctrl-C.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        for line in source:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=pump, name="simulate-stdin", daemon=True).start()
    return lines


async def converse(
    platform: Platform, lines: asyncio.Queue[str | None], out: TextIO, err: TextIO, *, echo: bool
) -> str:
    """Ring, then one speech event per non-empty line until the end of input or `/hangup`; hang up."""
    print(f"bot: {await platform.ring()}", file=out, flush=True)
    try:
        while True:
            if not echo:
                print("you> ", end="", file=out, flush=True)
            line = await lines.get()
            if line is None or line.strip() == HANGUP:
                break
            text = line.strip()
            if not text:
                continue
            if echo:  # not typed on a terminal: show what was said, so the output reads as a dialogue
                print(f"you: {text}", file=out, flush=True)
            print(f"bot: {await platform.say(text)}", file=out, flush=True)
    finally:
        # Also on Ctrl-C: a call left open would otherwise wait for the sweeper.
        outcome = await asyncio.shield(platform.hang_up())
        if not echo:
            print(file=out)
        print(f"call ended: {outcome}", file=err, flush=True)
    return outcome


@dataclass(frozen=True, slots=True)
class Options:
    caller: str
    bot: str
    format: str  # seed | voipbin | twilio
    url: str | None  # None: start the service in this process
    talk_api_port: int  # the VoIPBin stand-in's port against a running service


def _revealed(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _voipbin_update(settings: Settings, talk_api_url: str) -> dict[str, Any]:
    """What the service started here needs to play VoIPBin with us: secrets, and our talk API."""
    return {
        "voipbin_fetch_token": settings.voipbin_fetch_token or SecretStr(secrets.token_urlsafe(24)),
        "voipbin_webhook_secret": settings.voipbin_webhook_secret or SecretStr(secrets.token_urlsafe(24)),
        "voipbin_access_key": settings.voipbin_access_key or SecretStr("simulate"),
        "voipbin_api_url": f"{talk_api_url}/v1.0",
    }


async def run(options: Options, settings: Settings, source: TextIO, out: TextIO, err: TextIO) -> str:
    """Place one call; returns how the service acknowledged the hangup."""
    echo = not source.isatty()
    async with contextlib.AsyncExitStack() as stack:
        talks = TalkApi()
        if options.format == "voipbin":
            port = options.talk_api_port if options.url else 0
            try:
                talk_url = await stack.enter_async_context(
                    served(talks.standin.app, port=port, lifespan="off")
                )
            except OSError as exc:
                raise SimulationError(f"cannot serve the VoIPBin stand-in on port {port}: {exc}") from exc
            if options.url:
                print(f"VoIPBin REST API stand-in: {talk_url}/v1.0", file=err)
            else:
                settings = settings.model_copy(update=_voipbin_update(settings, talk_url))
            key = settings.voipbin_access_key
            talks.standin.access_key = key.get_secret_value() if key else None
        url = options.url
        if url is None:
            settings = twilio.for_own_service(settings) if options.format == "twilio" else settings
            url = await stack.enter_async_context(own_service(settings))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
        platform: Platform
        if options.format == "voipbin":
            if settings.voipbin_fetch_token is None:
                raise SimulationError("set CALLMEMORY_VOIPBIN_FETCH_TOKEN to the service's fetch token")
            platform = VoipbinPlatform(
                http,
                VoipbinCall(caller=options.caller, bot=options.bot),
                settings.voipbin_fetch_token.get_secret_value(),
                _revealed(settings.voipbin_webhook_secret),
                talks,
                answer_timeout_s=settings.llm_timeout_s
                + settings.voipbin_api_timeout_s * settings.voipbin_api_attempts
                + 5,
            )
        elif options.format == "twilio":
            platform = twilio.TwilioPlatform.calling(
                http, url, options.caller, options.bot, settings, refused=SimulationError
            )
        else:
            platform = SeedPlatform(
                http,
                options.caller,
                options.bot,
                call_id=f"sim-{uuid.uuid4().hex[:12]}",
                webhook_secret=_revealed(settings.webhook_secret),
                webhook_token=_revealed(settings.webhook_token),
            )
        # No phone numbers here: stderr may also carry the self-started service's logs, kept free of them.
        print(
            f"calling the bot ({options.format} format, {url}); {HANGUP} or Ctrl-D hangs up",
            file=err,
            flush=True,
        )
        try:
            outcome = await converse(platform, read_lines(source), out, err, echo=echo)
        except httpx.HTTPError as exc:
            raise SimulationError(f"the service at {url} did not answer: {exc!r}") from exc
        return outcome
    raise AssertionError("unreachable")  # mypy: the exit stack may swallow exceptions


def main(options: Options, settings: Settings) -> int:
    try:
        asyncio.run(run(options, settings, sys.stdin, sys.stdout, sys.stderr))
    except SimulationError as exc:
        print(f"callmemory simulate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
