"""VoIPBin as a platform (see platforms/base.py)."""

from __future__ import annotations

import contextlib
from typing import Final

from callmemory.api.fastpath import FastPathApp
from callmemory.platforms.base import Dial, Simulation
from callmemory.platforms.voipbin import routes
from callmemory.platforms.voipbin.simulate import VoipbinSimulation
from callmemory.settings import Settings


class Voipbin:
    name: Final = "voipbin"

    def install(self, app: FastPathApp, settings: Settings) -> None:
        app.include_router(routes.router)

    async def simulate(self, stack: contextlib.AsyncExitStack, settings: Settings, dial: Dial) -> Simulation:
        return await VoipbinSimulation.start(stack, settings, dial)
