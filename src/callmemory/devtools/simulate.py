"""`callmemory simulate`: phone the bot from a terminal, with this program playing the telephony platform.

One run is one call: it rings, sends each line as recognised speech, prints the bot's replies and hangs up
on end of input or `/hangup`. It talks HTTP to a service, either one already running or one it starts in
this process (`own_service`), so every event crosses the same routes a real platform's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, TextIO

import httpx

from callmemory.app import create_app
from callmemory.devtools.local_server import served
from callmemory.platforms import registry
from callmemory.platforms.base import Dial, Phone, SimulationError
from callmemory.settings import Settings

HANGUP: Final = "/hangup"


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
    platform: Phone, lines: asyncio.Queue[str | None], out: TextIO, err: TextIO, *, echo: bool
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
    format: str  # a platform's name (platforms/registry.py)
    url: str | None  # None: start the service in this process
    talk_api_port: int  # the VoIPBin stand-in's port against a running service


async def run(options: Options, settings: Settings, source: TextIO, out: TextIO, err: TextIO) -> str:
    """Place one call; returns how the service acknowledged the hangup."""
    echo = not source.isatty()
    dial = Dial(options.caller, options.bot, options.url is None, options.talk_api_port, err)
    async with contextlib.AsyncExitStack() as stack:
        simulation = await registry.named(options.format).simulate(stack, settings, dial)
        url = options.url
        if url is None:
            url = await stack.enter_async_context(own_service(simulation.settings))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
        phone = simulation.phone(http, url)
        # No phone numbers here: stderr may also carry the self-started service's logs, kept free of them.
        print(
            f"calling the bot ({options.format} format, {url}); {HANGUP} or Ctrl-D hangs up",
            file=err,
            flush=True,
        )
        try:
            outcome = await converse(phone, read_lines(source), out, err, echo=echo)
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
