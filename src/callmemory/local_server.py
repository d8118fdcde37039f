"""Serving an ASGI app on a local port inside the running event loop (stub servers, tests, demos)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


@asynccontextmanager
async def served(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, lifespan: Literal["on", "off"] = "on"
) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL (`http://host:port`). Port 0 picks one."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections. Without it uvicorn's two writes per response (head, body)
    # meet the client's delayed ACK, and every response took ~40 ms longer than it should.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # surfaces the startup error
        await asyncio.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
