"""`callmemory serve | migrate`: the operator's entry points."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from callmemory.settings import Settings


def _metrics_dir(settings: Settings) -> None:
    """Give every worker's metrics one fresh directory to share (see observability/metrics.py).

    Set before anything imports prometheus_client, which reads it once, at import; a directory the
    operator chose is used as it is.
    """
    if chosen := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(chosen, exist_ok=True)  # prometheus_client fails on a missing one
        return
    path = settings.data_dir.resolve() / "metrics"
    shutil.rmtree(path, ignore_errors=True)  # the counts of an earlier run would add to this one's
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        sys.exit(f"callmemory: invalid configuration:\n{exc}")


def _with_embedded_defaults(settings: Settings) -> Settings:
    """Start embedded Postgres/Redis for whichever URL is not configured, and export the URLs.

    Exported through the environment because uvicorn workers build their own Settings from it.
    """
    if settings.database_url and settings.redis_url:
        return settings
    if settings.environment == "production":
        sys.exit("callmemory: DATABASE_URL and REDIS_URL are required in production")
    from callmemory.embedded import EmbeddedError, EmbeddedServices

    embedded = EmbeddedServices(settings.data_dir.resolve() / "embedded")
    try:
        urls = embedded.start()  # stopped at interpreter exit (atexit), after uvicorn returns
    except EmbeddedError as exc:
        sys.exit(f"callmemory: could not start the embedded servers: {exc}")
    if not settings.database_url:
        os.environ["DATABASE_URL"] = urls.database_url
        print(f"  embedded PostgreSQL: {urls.data_dir / 'postgres'}")
    if not settings.redis_url:
        os.environ["REDIS_URL"] = urls.redis_url
        print(f"  embedded Redis:      {urls.data_dir / 'redis'}")
    return Settings()


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from callmemory.db.migrate import upgrade
    from callmemory.observability.logs import log_config

    for name, value in (("HOST", args.host), ("PORT", args.port), ("DATA_DIR", args.data_dir)):
        if value is not None:
            os.environ[f"CALLMEMORY_{name}"] = str(value)
    settings = _settings()
    print("callmemory starting")
    settings = _with_embedded_defaults(settings)
    assert settings.database_url is not None
    upgrade(settings.database_url)
    settings.resolved_hash_secret()  # create it now, once, rather than racing in several workers
    _metrics_dir(settings)
    llm = (
        f"{settings.llm_model} at {settings.openai_base_url or 'api.openai.com'}"
        if settings.openai_api_key
        else "offline (no OPENAI_API_KEY)"
    )
    print(f"  data directory:      {settings.data_dir.resolve()}")
    print(f"  LLM:                 {llm}")
    print(f"  webhook:             http://{settings.host}:{settings.port}/webhook/call")
    print(f"  API docs:            http://{settings.host}:{settings.port}/docs", flush=True)
    # uvicorn re-raises SIGTERM once it has shut down gracefully; exit normally on it instead, so the
    # atexit handlers stop the embedded servers cleanly rather than leaving them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "callmemory.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_config=log_config(args.log_level, fmt=settings.log_format),
        log_level=args.log_level,  # so that --log-level warning also silences the access log
        timeout_graceful_shutdown=10,
    )


def migrate(args: argparse.Namespace) -> None:
    from callmemory.db.migrate import downgrade, upgrade

    settings = _settings()
    if not settings.database_url:
        sys.exit("callmemory: set DATABASE_URL to migrate (serve migrates its embedded database itself)")
    if args.downgrade:
        downgrade(settings.database_url, args.downgrade)
    else:
        upgrade(settings.database_url, args.revision)
    print("migrations applied")


def stub_llm(args: argparse.Namespace) -> None:
    import asyncio
    from pathlib import Path

    from callmemory.stub_llm import StubLLM, StubServer

    async def run() -> None:
        stub = StubLLM(delay_s=args.delay_ms / 1000, log_path=Path(args.log) if args.log else None)
        async with StubServer(stub).running(args.host, args.port) as server:
            print(f"stub LLM listening: OPENAI_BASE_URL={server.base_url} (any OPENAI_API_KEY)", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="callmemory", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p_serve = commands.add_parser(
        "serve", help="run the service (embedded Postgres/Redis when no URL is set)"
    )
    p_serve.add_argument("--host", help="default CALLMEMORY_HOST or 127.0.0.1")
    p_serve.add_argument("--port", type=int, help="default CALLMEMORY_PORT or 8080")
    p_serve.add_argument("--data-dir", help="default CALLMEMORY_DATA_DIR or ./.callmemory")
    p_serve.add_argument("--workers", type=int, default=1)
    p_serve.add_argument("--log-level", default="info")
    p_serve.set_defaults(run=serve)

    p_migrate = commands.add_parser("migrate", help="apply database migrations to DATABASE_URL")
    p_migrate.add_argument("revision", nargs="?", default="head")
    p_migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION instead")
    p_migrate.set_defaults(run=migrate)

    p_stub = commands.add_parser(
        "stub-llm", help="serve a local OpenAI-compatible stub that echoes the caller"
    )
    p_stub.add_argument("--host", default="127.0.0.1")
    p_stub.add_argument("--port", type=int, default=9099)
    p_stub.add_argument("--delay-ms", type=float, default=0.0)
    p_stub.add_argument("--log", help="append every request received to this file, one JSON line each")
    p_stub.set_defaults(run=stub_llm)

    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
