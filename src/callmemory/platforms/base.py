"""What a telephony platform is to the rest of callmemory.

A platform turns its own requests into the core's `CallEvent`s, hands them to the `CallHandler`, and
renders the `Reply` the core gives back in its own answer format: all of that happens in its routes,
which `install` mounts on the app. It also knows how to play itself for `callmemory simulate`: the
requests it would send for one call, and any stand-in for its own services that the callmemory service
calls back (VoIPBin's REST API). Everything of one platform lives in its folder; `registry.py` lists
them, and the app and the CLI read that list.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:  # the CLI reads platform names through here: no web stack at its start-up
    import httpx

    from callmemory.api.fastpath import FastPathApp
    from callmemory.settings import Settings


class SimulationError(RuntimeError):
    """A simulated call could not go on; the message says why (printed, exit status 1)."""


class Phone(Protocol):
    """One call, placed the way the platform places it, against a callmemory service."""

    async def ring(self) -> str: ...
    async def say(self, text: str) -> str: ...
    async def hang_up(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Dial:
    """Who calls whom in a simulated call, and how the service is reached."""

    caller: str
    bot: str
    own_service: bool  # simulate starts the service itself, configured for the platform
    standin_port: int  # against a running service: where a platform stand-in listens, if it needs one
    err: TextIO  # status lines


class Simulation(Protocol):
    """A platform made ready to be simulated: its stand-ins running, the settings of the service."""

    @property
    def settings(self) -> Settings:
        """For a service that simulate starts itself."""
        ...

    def phone(self, http: httpx.AsyncClient, url: str) -> Phone: ...


class Platform(Protocol):
    @property
    def name(self) -> str:
        """As in CallRef.platform, the metrics' `platform` label and `simulate --format`."""
        ...

    def install(self, app: FastPathApp, settings: Settings) -> None:
        """Mount the platform's routes (and say in the OpenAPI document what `settings` decide)."""
        ...

    async def simulate(self, stack: contextlib.AsyncExitStack, settings: Settings, dial: Dial) -> Simulation:
        """Start whatever the service must reach for one simulated call (closed with `stack`)."""
        ...


def problem(response: httpx.Response) -> str:
    """What a refusing service said, for a simulation's error message."""
    try:
        body: Any = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    if isinstance(body, dict) and "detail" in body:
        return f"{response.status_code} {body.get('error', '')}: {body['detail']}"
    return f"{response.status_code} {response.text[:200]}"
