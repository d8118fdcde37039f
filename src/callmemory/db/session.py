"""Engine and session factory construction; called once by the app's lifespan."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def async_url(url: str) -> str:
    """Accept the plain `postgresql://` URLs people paste and pick the asyncpg driver."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    return url


def create_engine(
    url: str, *, pool_size: int = 10, timeout_s: float = 5.0, statement_timeout_s: float = 30.0
) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # asyncpg's own limits, for every statement, background and admin work included: a Postgres
        # that accepts connections and then never answers (a partition, a stuck failover) would
        # otherwise hold each operation until the kernel gives up on the socket. The paths that a
        # caller or a platform waits for have a shorter deadline of their own (memory/archive.py).
        connect_args={"timeout": timeout_s, "command_timeout": statement_timeout_s},
        # No ping on checkout: it costs three round trips (BEGIN, ";", ROLLBACK) every time. A connection
        # that died in the pool fails on first use instead, and SQLAlchemy then invalidates the whole
        # pool; the archive's hot paths retry once on a fresh connection (see memory/archive.py), the
        # other users answer 503 or retry their job, as for any outage.
        pool_pre_ping=False,
        # Replaced before a server or a proxy drops it for being idle too long.
        pool_recycle=1800,
        pool_timeout=timeout_s,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
