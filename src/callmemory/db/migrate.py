"""Running the Alembic migrations from code (the CLI, the tests) without an ini file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from asyncpg.exceptions import CannotConnectNowError
from sqlalchemy import pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from callmemory.db.session import async_url

# Between two tries while Postgres starts: short next to a start-up, long next to a refused connection.
_RETRY_INTERVAL_S = 0.5
# One try's limit: a server that accepts the TCP connection and then says nothing is tried again too.
_ATTEMPT_TIMEOUT_S = 5.0


class DatabaseNotReady(Exception):
    """Postgres did not accept a connection before the deadline."""


def migrations_dir() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "_migrations"  # inside an installed wheel
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "migrations"  # an editable install or a checkout
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("the migrations directory is neither packaged nor next to the source tree")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # An attribute, not a main option: configparser would choke on a % in a password.
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def wait_for_database(database_url: str, deadline_s: float) -> None:
    """Return once Postgres accepts a connection; DatabaseNotReady if it has not within `deadline_s`.

    A migration started beside its database (compose, a Kubernetes Job) can come before the server
    listens: the official image's first start initialises on a Unix-socket-only server, so a healthcheck
    passes while TCP is still refused, and the server then answers "starting up" for a moment. Only
    those conditions are waited out; a wrong password or a missing database fails at once.
    """
    asyncio.run(_wait(database_url, deadline_s))


async def _wait(database_url: str, deadline_s: float) -> None:
    url = async_url(database_url)
    give_up = time.monotonic() + deadline_s
    while True:
        timeout = max(0.1, min(_ATTEMPT_TIMEOUT_S, give_up - time.monotonic()))
        engine = create_async_engine(url, poolclass=pool.NullPool, connect_args={"timeout": timeout})
        try:
            async with engine.connect():
                return
        except Exception as exc:
            if not _still_starting(exc):
                raise
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                raise DatabaseNotReady(
                    f"Postgres at {_where(database_url)} did not accept a connection within "
                    f"{deadline_s:g} s (last: {_describe(exc)})"
                ) from exc
        finally:
            await engine.dispose()
        await asyncio.sleep(min(_RETRY_INTERVAL_S, remaining))  # the last try comes at the deadline


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__
    return chain


def _still_starting(exc: BaseException) -> bool:
    # OSError: refused, unreachable, a name not yet in DNS, a timeout. CannotConnectNowError: 57P03,
    # "the database system is starting up" (or shutting down, before a restart).
    return any(isinstance(cause, OSError | CannotConnectNowError) for cause in _causes(exc))


def _describe(exc: BaseException) -> str:
    root = _causes(exc)[-1]
    return f"{type(root).__name__}: {root}" if str(root) else type(root).__name__


def _where(database_url: str) -> str:
    """host:port and database, never the password."""
    url = make_url(async_url(database_url))
    host = url.query.get("host") or url.host or "localhost"
    return f"{host}:{url.port or 5432}, database {url.database}"
