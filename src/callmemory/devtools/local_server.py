"""Serving an ASGI app on a local port inside the running event loop: what `simulate` starts (the
service, its VoIPBin stand-in), the stub LLM, and the fakes tests serve."""

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


def _bound(host: str, port: int) -> socket.socket:
    """A TCP socket bound as uvicorn binds its own (SO_REUSEADDR); OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def ensure_port_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE, EADDRNOTAVAIL...) if uvicorn could not listen on host:port now."""
    _bound(host, port).close()


@contextlib.asynccontextmanager
async def served(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, lifespan: Literal["on", "off"] = "on"
) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL (`http://host:port`). Port 0 picks one.

    OSError when the port is taken; the app's startup error when its lifespan fails.
    """
    sock = _bound(host, port)
    # Inherited by accepted connections. Without it uvicorn's two writes per response (head, body)
    # meet the client's delayed ACK, and every response took ~40 ms longer than it should.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # surfaces the startup error
            raise RuntimeError("the local server stopped while starting")
        await asyncio.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
