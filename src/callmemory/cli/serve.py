"""The service's commands: serve, and the summary worker and migrations it runs."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from typing import TYPE_CHECKING

from callmemory.cli.common import (
    LOG_LEVEL_HELP,
    OWNED,
    Commands,
    claim,
    load_settings,
    port_free,
    store_settings,
    subcommand,
    with_embedded_defaults,
)
from callmemory.settings import Settings

if TYPE_CHECKING:
    from callmemory.summaries.process import SummaryProcess


def _metrics_dir(settings: Settings) -> None:
    """Give every worker's metrics one fresh directory to share (see observability/metrics.py).

    Set before anything imports prometheus_client, which reads it once, at import; a directory the
    operator chose is used as it is. Emptied only by the data directory's owner (see claim).
    """
    if chosen := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(chosen, exist_ok=True)  # prometheus_client fails on a missing one
        return
    path = settings.data_dir.resolve() / "metrics"
    shutil.rmtree(path, ignore_errors=True)  # the counts of an earlier run would add to this one's
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from callmemory.db.migrate import upgrade
    from callmemory.observability.logs import log_config

    for name, value in (("HOST", args.host), ("PORT", args.port), ("DATA_DIR", args.data_dir)):
        if value is not None:
            os.environ[f"CALLMEMORY_{name}"] = str(value)
    settings = load_settings()
    # Both checks before anything is started or changed: a refused second `serve` touches nothing.
    OWNED.append(claim(settings, "serve", settings.port))
    port_free(settings.host, settings.port)
    print("callmemory starting")
    settings = with_embedded_defaults(settings)
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
    print(f"  webhook auth:        {_webhook_auth(settings)}")
    print(f"  caller memory:       {settings.describe_disclosure()}")
    print(f"  API docs:            http://{settings.host}:{settings.port}/docs", flush=True)
    summaries = _start_summary_process(settings, args.log_level)
    # uvicorn re-raises SIGTERM once it has shut down gracefully; exit normally on it instead, so the
    # atexit handlers stop the embedded servers cleanly rather than leaving them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            "callmemory.app:create_served_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=args.workers,
            log_config=log_config(args.log_level, fmt=settings.log_format),
            log_level=args.log_level,  # so that --log-level warning also silences the access log
            access_log=args.access_log,
            timeout_graceful_shutdown=10,
        )
    finally:
        if summaries is not None:  # before the embedded servers stop, which it still uses
            summaries.stop()


@subcommand
def _serve_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "serve",
        help="run the service (embedded Postgres/Redis when no URL is set)",
        description="Serve the webhooks, the /v1 API and /docs. It owns its data directory: a second "
        "`serve` (or `simulate --embedded`) on the same directory is refused.",
    )
    p.add_argument("--host", help="address to listen on; default CALLMEMORY_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, help="port to listen on; default CALLMEMORY_PORT or 8080")
    p.add_argument(
        "--data-dir",
        help="embedded servers, hash secret and metrics; default CALLMEMORY_DATA_DIR or ./.callmemory",
    )
    p.add_argument("--workers", type=int, default=1, help="web worker processes (%(default)s)")
    p.add_argument("--log-level", default="info", help=LOG_LEVEL_HELP)
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a log line per HTTP request (--no-access-log: about a tenth less CPU per webhook)",
    )
    p.set_defaults(run=serve)


def _webhook_auth(settings: Settings) -> str:
    if settings.webhook_secret is not None:
        return "X-Callmemory-Signature (CALLMEMORY_WEBHOOK_SECRET)" + (
            " or bearer token" if settings.webhook_token is not None else ""
        )
    if settings.webhook_token is not None:
        return "bearer token (CALLMEMORY_WEBHOOK_TOKEN)"
    return "NONE - open to anyone who can reach it; set CALLMEMORY_WEBHOOK_SECRET"


def _start_summary_process(settings: Settings, log_level: str) -> SummaryProcess | None:
    """The summary worker in a process of its own (see summaries/process.py); the web workers run none."""
    if not settings.summary_worker or settings.summary_key is None:
        return None
    from callmemory.summaries.process import SummaryProcess

    process = SummaryProcess(log_level)
    process.start()
    # Read by the uvicorn workers' Settings: their event loops are for calls only.
    os.environ["CALLMEMORY_SUMMARY_WORKER"] = "false"
    print(f"  summaries:           worker process {process.pid}, at lower CPU priority")
    return process


def summarise(args: argparse.Namespace) -> None:
    parent = os.environ.get("CALLMEMORY_SUMMARY_PARENT_PID")
    if parent:
        _die_with_parent(int(parent))  # first: the imports and settings below take seconds on a busy machine

    import asyncio
    import logging.config

    from callmemory.observability.logs import log_config
    from callmemory.summaries.process import run_summaries

    settings = store_settings("summarise")
    logging.config.dictConfig(log_config(args.log_level, fmt=settings.log_format))
    if args.nice:
        os.nice(args.nice)
    if args.idle and hasattr(os, "SCHED_IDLE"):  # Linux
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    sys.exit(asyncio.run(run_summaries(settings, parent_pid=int(parent) if parent else None)))


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:
    """`serve`'s summary worker: on Linux the kernel kills it when `serve` dies, even a `serve` killed
    before the worker has started its parent check (which then runs only once a second, and in the idle
    scheduling class gets a turn only now and then while every core is busy: a killed `serve`'s worker
    outlived it by more than 15 s in a loaded test run). A summary in flight is taken again when its
    lease runs out, as after any crash."""
    if sys.platform == "linux":
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            print(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}", file=sys.stderr)
    if os.getppid() != parent_pid:  # gone already, before the kernel was asked
        sys.exit(0)


@subcommand
def _summarise_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "summarise",
        help="work on the queued call summaries until stopped (serve starts one; run more to scale out)",
    )
    p.add_argument("--log-level", default="info", help=LOG_LEVEL_HELP)
    p.add_argument("--nice", type=int, default=0, help="lower the process's CPU priority by this")
    p.add_argument(
        "--idle",
        action="store_true",
        help="Linux: run in the idle scheduling class, so that any other process needing the CPU takes it "
        "at once (a low priority alone still lets this process finish its time slice first)",
    )
    p.set_defaults(run=summarise)


def migrate(args: argparse.Namespace) -> None:
    from callmemory.db.migrate import DatabaseNotReady, downgrade, upgrade, wait_for_database

    settings = store_settings("migrate", migrated=False)
    assert settings.database_url is not None
    try:
        wait_for_database(settings.database_url, args.wait)
    except DatabaseNotReady as exc:
        sys.exit(f"callmemory migrate: {exc}")
    if args.downgrade:
        downgrade(settings.database_url, args.downgrade)
    else:
        upgrade(settings.database_url, args.revision)
    print("migrations applied")


@subcommand
def _migrate_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "migrate", help="apply the database migrations (DATABASE_URL, else the embedded database)"
    )
    p.add_argument("revision", nargs="?", default="head", help="upgrade to this revision (%(default)s)")
    p.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION instead")
    p.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wait up to SECONDS (%(default)g) for a database that is still starting (refuses "
        "connections, or answers that it is starting up); a wrong password or database fails at once",
    )
    p.set_defaults(run=migrate)
