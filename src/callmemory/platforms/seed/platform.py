"""The seed format as a platform (see platforms/base.py)."""

from __future__ import annotations

import contextlib
from typing import Any, Final

from callmemory.api.fastpath import FastPathApp
from callmemory.platforms.base import Dial, Simulation
from callmemory.platforms.seed import routes
from callmemory.platforms.seed.simulate import SeedSimulation
from callmemory.settings import Settings


class Seed:
    name: Final = "seed"

    def install(self, app: FastPathApp, settings: Settings) -> None:
        app.include_router(routes.router)
        # Served past FastAPI's routing and dependencies: the hottest path (see api/fastpath.py).
        app.add_fast_path("POST", "/webhook/call", routes.seed_call_event)
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            # FastAPI's "Extending OpenAPI": generate() keeps the document in app.openapi_schema.
            if app.openapi_schema is None:
                routes.document_settings(generate(), settings)
            return app.openapi_schema or {}

        app.openapi = openapi  # type: ignore[method-assign]

    async def simulate(self, stack: contextlib.AsyncExitStack, settings: Settings, dial: Dial) -> Simulation:
        return SeedSimulation(settings, dial.caller, dial.bot)
