"""An ASGI app on a local port inside the running event loop: what `simulate` starts (the service, its
VoIPBin stand-in) and what tests serve their fakes with."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The program that embeds the server owns Ctrl-C: `simulate` must still hang up through the
        # service it started, so the service may not stop on the signal first.
        yield


@contextlib.asynccontextmanager
async def serve_locally(
    app: ASGIApp, port: int = 0, *, lifespan: Literal["on", "off"] = "on"
) -> AsyncIterator[str]:
    """`app` on 127.0.0.1:`port` (0: any free one) until the block ends; yields its base URL.

    OSError when the port is taken; the app's startup error when its lifespan fails.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # surfaces the startup error
            raise RuntimeError("the local server stopped while starting")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
