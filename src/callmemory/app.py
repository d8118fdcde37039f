"""The app factory. `create_app()` builds nothing but routes; the lifespan opens the clients."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI

from callmemory import __version__
from callmemory.api import docs, errors, health, metrics
from callmemory.api.body import BodyLimit
from callmemory.api.fastpath import FastPathApp
from callmemory.api.integrator import routes as memory
from callmemory.observability.requests import RequestContext
from callmemory.platforms import registry
from callmemory.platforms.seed import auth as webhook_auth
from callmemory.services import Services, open_services
from callmemory.settings import Settings


class State(TypedDict):
    services: Services


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False) -> FastAPI:
    """The app; `freeze_gc` for a process that runs nothing else (see `create_served_app`)."""
    # Built here, not at import: tests and the CLI pass their own settings.
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with open_services(settings) as services:
            webhook_auth.announce(settings)
            if freeze_gc:
                # Everything built so far (modules, clients, compiled SQL) lives as long as the process.
                # Left to the collector, each full collection walked it all again: a pause of 70-80 ms
                # per worker under load, every caller on that worker waiting through it.
                gc.collect()
                gc.freeze()
            yield {"services": services}

    app = FastPathApp(
        title="callmemory",
        version=__version__,
        summary="Persistent caller memory for AI voice bots.",
        description=(
            "A webhook target for telephony platforms: recognises returning callers, keeps their recent "
            "turns hot in Redis, prompts an OpenAI-compatible LLM with that memory, and archives every "
            "call to Postgres."
        ),
        openapi_tags=docs.TAGS,
        # FastAPI's own pages load their scripts from a CDN; api/docs.py serves them from a package.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        # No path of the API ends in /: a redirect would lead to another operation than the one asked for
        # (`/calls/%2F/%2F`, a transcript's path, was redirected to the list of calls).
        redirect_slashes=False,
    )
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestContext)  # outermost: a refused body's answer carries the request id too
    for platform in registry.platforms():
        platform.install(app, settings)
    app.include_router(health.router)
    docs.install(app)
    app.include_router(memory.router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    return app


def create_served_app() -> FastAPI:
    """The app in a `callmemory serve` worker process, which holds nothing but this app."""
    return create_app(freeze_gc=True)
