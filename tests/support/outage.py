"""A TCP proxy in front of a real server, to take that server "down" and bring it back in a test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

from sqlalchemy.engine import make_url

from callmemory.settings import Settings


def _target(database_url: str) -> tuple[str, int] | str:
    """Where the database listens: `(host, port)`, or the unix socket of a `?host=/dir` URL (the
    embedded PostgreSQL listens on a socket only)."""
    url = make_url(database_url)
    socket_dir = url.query.get("host")
    if isinstance(socket_dir, str) and socket_dir.startswith("/"):
        return f"{socket_dir}/.s.PGSQL.{url.port or 5432}"
    return (url.host or "127.0.0.1", url.port or 5432)


def through_url(database_url: str, port: int) -> str:
    """`database_url`, reaching its database through an Outage on 127.0.0.1:`port`."""
    url = make_url(database_url)
    url = url.set(host="127.0.0.1", port=port, query={k: v for k, v in url.query.items() if k != "host"})
    return url.render_as_string(hide_password=False)


class Outage:
    """Forwards a local TCP port to a database. `cut()` drops every connection and refuses new ones;
    `hang()` is a black hole instead (a partition, a stuck failover): connections stay open and new
    ones are accepted, but not a byte reaches either side. `restore()` ends either: connections made
    before it are dropped, new ones are forwarded again."""

    def __init__(self, database_url: str) -> None:
        self._target = _target(database_url)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._hanging = False
        self.port = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if self._hanging:
                    continue  # swallowed: the other side waits for an answer that never comes
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._hanging:
            self._open.add(client_w)
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while await client_r.read(65536):
                    pass
            self._open.discard(client_w)
            return
        try:
            if isinstance(self._target, str):
                server_r, server_w = await asyncio.open_unix_connection(self._target)
            else:
                server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        self._open |= {client_w, server_w}
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        self._open -= {client_w, server_w}

    async def restore(self) -> None:
        if self._hanging:
            self._hanging = False
            self._drop_connections()  # they lost bytes while hanging: no protocol survives that
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        self._hanging = False
        if self._server is not None:
            self._server.close()
            self._server = None
        self._drop_connections()

    async def hang(self) -> None:
        self._hanging = True

    def _drop_connections(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Outage]:
        await self.restore()
        try:
            yield self
        finally:
            await self.cut()


class OutageThread:
    """An Outage on an event loop of its own thread, for a service running in another process."""

    def __init__(self, database_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._outage = Outage(database_url)

    @property
    def port(self) -> int:
        return self._outage.port

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def cut(self) -> None:
        self._run(self._outage.cut())

    def restore(self) -> None:
        self._run(self._outage.restore())

    def hang(self) -> None:
        self._run(self._outage.hang())

    @contextlib.contextmanager
    def running(self) -> Iterator[OutageThread]:
        self._thread.start()
        self.restore()
        try:
            yield self
        finally:
            self.cut()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def through(settings: Settings, outage: Outage, **overrides: Any) -> Settings:
    """`settings` with Postgres reached through `outage`."""
    return settings.model_copy(
        update={"database_url": through_url(settings.database_url or "", outage.port), **overrides}
    )
