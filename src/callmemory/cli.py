"""`callmemory serve | summarise | migrate | simulate | forget | export | stats | quarantine | summaries`:
the operator's commands."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from callmemory.platforms import registry
from callmemory.settings import Settings

if TYPE_CHECKING:
    from callmemory.summaries.process import SummaryProcess


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
    from callmemory.devtools.embedded import EmbeddedError, EmbeddedServices

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
    print(f"  webhook auth:        {_webhook_auth(settings)}")
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
    import asyncio
    import logging.config

    from callmemory.observability.logs import log_config
    from callmemory.summaries.process import run_summaries

    settings = _settings()
    if not settings.database_url or not settings.redis_url:
        sys.exit("callmemory: set DATABASE_URL and REDIS_URL to run the summary worker")
    logging.config.dictConfig(log_config(args.log_level, fmt=settings.log_format))
    if args.nice:
        os.nice(args.nice)
    if args.idle and hasattr(os, "SCHED_IDLE"):  # Linux
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    parent = os.environ.get("CALLMEMORY_SUMMARY_PARENT_PID")
    sys.exit(asyncio.run(run_summaries(settings, parent_pid=int(parent) if parent else None)))


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

    from callmemory.devtools.stub_llm import StubLLM, StubServer

    async def run() -> None:
        stub = StubLLM(
            delay_s=args.delay_ms / 1000,
            log_path=Path(args.log) if args.log else None,
            # Serving demos and benchmarks for hours: `--log` keeps the requests, on disk.
            keep_requests=False,
        )
        async with StubServer(stub).running(args.host, args.port) as server:
            print(f"stub LLM listening: OPENAI_BASE_URL={server.base_url} (any OPENAI_API_KEY)", flush=True)
            await asyncio.Event().wait()

    import uvloop  # uvicorn's own loop; the stub shares the machine with what it serves in benchmarks

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


def mcp(args: argparse.Namespace) -> None:
    import asyncio

    from callmemory.ops.mcp import serve_stdio

    settings = _settings()
    key = settings.mcp_api_key.get_secret_value() if settings.mcp_api_key else None
    if key is None:  # stdout carries the protocol: anything for people goes to stderr
        print(
            "callmemory mcp: CALLMEMORY_MCP_API_KEY is not set; the service will refuse every tool",
            file=sys.stderr,
        )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_stdio(args.url or settings.mcp_url, key, settings.mcp_timeout_s))


DEFAULT_SIMULATE_URL = "http://127.0.0.1:8080"


def simulate(args: argparse.Namespace) -> None:
    from callmemory.devtools import simulate as sim

    url: str | None = None
    if args.embedded:
        pass
    elif args.url:
        url = args.url
    elif sim.answers(DEFAULT_SIMULATE_URL):
        url = DEFAULT_SIMULATE_URL
    else:
        print(f"nothing answers at {DEFAULT_SIMULATE_URL}: starting the service here", file=sys.stderr)
    if url is not None:
        settings = _settings()
    else:
        os.environ["CALLMEMORY_DATA_DIR"] = args.data_dir
        # Status lines to stderr: stdout carries the conversation.
        with contextlib.redirect_stdout(sys.stderr):
            settings = _with_embedded_defaults(_settings())
        assert settings.database_url is not None
        from callmemory.db.migrate import upgrade

        upgrade(settings.database_url)
    options = sim.Options(
        caller=args.from_, bot=args.to, format=args.format, url=url, talk_api_port=args.voipbin_api_port
    )
    sys.exit(sim.main(options, settings))


def _admin(run: Callable[[Settings], Coroutine[Any, Any, object]]) -> object:
    import asyncio

    from callmemory.ops.admin import AdminError

    try:
        return asyncio.run(run(_settings()))
    except AdminError as exc:
        print(f"callmemory: {exc}", file=sys.stderr)
        sys.exit(exc.exit_status)
    except KeyboardInterrupt:
        sys.exit(130)  # an erasure stopped half-way is finished by repeating it


def _print_json(value: object) -> None:
    import json

    print(json.dumps(value, indent=2, ensure_ascii=False))


def forget(args: argparse.Namespace) -> None:
    from callmemory.ops.admin import forget as erase

    _print_json(_admin(lambda settings: erase(settings, args.bot, args.caller)))


def export(args: argparse.Namespace) -> None:
    import json

    from callmemory.ops.admin import BAD_INPUT, export_caller, export_many

    if args.caller is not None and args.bot is None:
        print("callmemory export: --caller needs --bot", file=sys.stderr)
        sys.exit(BAD_INPUT)
    if args.bot is None and not args.all:
        print(
            "callmemory export: name a caller (--bot N --caller N), a bot (--bot N) or --all", file=sys.stderr
        )
        sys.exit(BAD_INPUT)
    with contextlib.ExitStack() as stack:
        if args.caller is not None:
            data = _admin(lambda settings: export_caller(settings, args.bot, args.caller))
            # Opened only now, so that a failed export leaves no empty file behind.
            out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
            out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        else:
            out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
            _admin(lambda settings: export_many(settings, args.bot, out, sys.stderr))


def stats(args: argparse.Namespace) -> None:
    from callmemory.ops.admin import stats as count

    _print_json(_admin(lambda settings: count(settings, args.bot)))


def quarantine(args: argparse.Namespace) -> None:
    import json

    from callmemory.ops import admin

    if args.action == "list":
        _print_json(_admin(admin.quarantine_list))
    elif args.action == "export":
        data = _admin(lambda settings: admin.quarantine_export(settings, args.call))
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
            out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        if args.call is None and not args.all:
            print("callmemory quarantine retry: name a call (--call ID) or --all", file=sys.stderr)
            sys.exit(admin.BAD_INPUT)
        _print_json(_admin(lambda settings: admin.quarantine_retry(settings, args.call)))


def summaries(args: argparse.Namespace) -> None:
    from callmemory.ops import admin

    if args.action == "status":
        _print_json(_admin(admin.summaries_status))
        return
    if (args.bot is None) != (args.caller is None):
        print("callmemory summaries requeue: --caller and --bot go together", file=sys.stderr)
        sys.exit(admin.BAD_INPUT)
    _print_json(
        _admin(
            lambda settings: admin.summaries_requeue(
                settings, degraded_only=args.degraded, bot=args.bot, caller=args.caller
            )
        )
    )


def _add_summaries_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p_summaries = commands.add_parser(
        "summaries",
        help="summary jobs: status (due, waiting, degraded by reason); requeue (try the LLM again)",
    )
    p_summaries.add_argument("action", choices=["status", "requeue"])
    p_summaries.add_argument(
        "--degraded", action="store_true", help="requeue only the jobs summarised from the transcript"
    )
    p_summaries.add_argument("--bot", help="requeue only this caller's jobs: the bot's number, E.164")
    p_summaries.add_argument("--caller", help="requeue only this caller's jobs: their number, E.164")
    p_summaries.set_defaults(run=summaries)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="callmemory", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_service_commands(commands)
    _add_operator_commands(commands)
    _add_summaries_command(commands)
    args = parser.parse_args(argv)
    args.run(args)


def _add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The service and what runs beside it: serve, summarise, migrate, stub-llm, mcp."""
    p_serve = commands.add_parser(
        "serve", help="run the service (embedded Postgres/Redis when no URL is set)"
    )
    p_serve.add_argument("--host", help="default CALLMEMORY_HOST or 127.0.0.1")
    p_serve.add_argument("--port", type=int, help="default CALLMEMORY_PORT or 8080")
    p_serve.add_argument("--data-dir", help="default CALLMEMORY_DATA_DIR or ./.callmemory")
    p_serve.add_argument("--workers", type=int, default=1)
    p_serve.add_argument("--log-level", default="info")
    p_serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a log line per HTTP request (--no-access-log: about a tenth less CPU per webhook)",
    )
    p_serve.set_defaults(run=serve)

    p_summarise = commands.add_parser(
        "summarise",
        help="work on the queued call summaries until stopped (serve starts one; run more to scale out)",
    )
    p_summarise.add_argument("--log-level", default="info")
    p_summarise.add_argument("--nice", type=int, default=0, help="lower the process's CPU priority by this")
    p_summarise.add_argument(
        "--idle",
        action="store_true",
        help="Linux: run in the idle scheduling class, so that any other process needing the CPU takes it "
        "at once (a low priority alone still lets this process finish its time slice first)",
    )
    p_summarise.set_defaults(run=summarise)

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

    p_mcp = commands.add_parser(
        "mcp",
        help="serve MCP over stdio: tools to read and erase callers' memory, for an agent's MCP client",
        description="An MCP server on stdin/stdout, a client of a running callmemory's /v1 API. The API "
        "key comes from CALLMEMORY_MCP_API_KEY (a bot-scoped key limits it to that bot's callers).",
    )
    p_mcp.add_argument(
        "--url", help="the service's address; default CALLMEMORY_MCP_URL or http://127.0.0.1:8080"
    )
    p_mcp.set_defaults(run=mcp)


def _add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """What a person runs against the service and its stores: simulate, forget, export, stats."""
    p_simulate = commands.add_parser(
        "simulate",
        help="phone the bot from a terminal: this command plays the telephony platform",
        description="Place one call: rings, sends each line you type as recognised speech, prints the "
        "bot's reply; Ctrl-D or /hangup hangs up. Lines come from stdin when it is not a terminal. "
        f"Calls the service at --url; without --url, the one at {DEFAULT_SIMULATE_URL} if it answers, "
        "else (or with --embedded) starts the service in this process, on DATABASE_URL/REDIS_URL when "
        "set, else on embedded servers in --data-dir. --format voipbin against a running service needs "
        "its CALLMEMORY_VOIPBIN_FETCH_TOKEN (and _WEBHOOK_SECRET, if set) in this environment too, and "
        "the service started with CALLMEMORY_VOIPBIN_API_URL=http://127.0.0.1:<--voipbin-api-port>/v1.0 "
        "and any CALLMEMORY_VOIPBIN_ACCESS_KEY, so that its answers reach this command.",
    )
    p_simulate.add_argument("--url", metavar="URL", help="the running service to call (default: see above)")
    p_simulate.add_argument(
        "--embedded",
        action="store_true",
        help="start the service in this process even if one answers (--url is then ignored)",
    )
    p_simulate.add_argument(
        "--data-dir", default=".callmemory-simulate", help="embedded servers' data (default %(default)s)"
    )
    p_simulate.add_argument(
        "--from", dest="from_", metavar="NUMBER", default="+14155551234", help="caller (%(default)s)"
    )
    p_simulate.add_argument(
        "--to", metavar="NUMBER", default="+14155550000", help="the bot's number (%(default)s)"
    )
    p_simulate.add_argument("--format", choices=registry.names(), default="seed")
    p_simulate.add_argument(
        "--voipbin-api-port",
        type=int,
        metavar="PORT",
        default=8081,
        help="--format voipbin against a running service: port of the VoIPBin API stand-in (%(default)s)",
    )
    p_simulate.set_defaults(run=simulate)

    p_forget = commands.add_parser("forget", help="erase a caller everywhere and print the receipt")
    p_forget.add_argument("--bot", required=True, help="the bot's number, E.164")
    p_forget.add_argument("--caller", required=True, help="the caller's number, E.164")
    p_forget.set_defaults(run=forget)

    p_export = commands.add_parser(
        "export", help="a caller's data as JSON; or all callers of a bot (--bot only), or --all"
    )
    p_export.add_argument("--bot", help="the bot's number, E.164")
    p_export.add_argument("--caller", help="the caller's number, E.164 (needs --bot)")
    p_export.add_argument("--all", action="store_true", help="every caller of every bot")
    p_export.add_argument("-o", "--output", help="write to this file instead of stdout")
    p_export.set_defaults(run=export)

    p_stats = commands.add_parser("stats", help="callers, calls, turns and pending archives")
    p_stats.add_argument("--bot", help="count only this bot's callers, calls and turns")
    p_stats.set_defaults(run=stats)

    p_quarantine = commands.add_parser(
        "quarantine",
        help="calls Postgres refused to archive (kept in Redis): list them, export them whole, retry them",
    )
    p_quarantine.add_argument("action", choices=["list", "export", "retry"])
    p_quarantine.add_argument("--call", metavar="CALL_ID", help="only this call (export, retry)")
    p_quarantine.add_argument("--all", action="store_true", help="retry every quarantined call")
    p_quarantine.add_argument("-o", "--output", help="export: write to this file instead of stdout")
    p_quarantine.set_defaults(run=quarantine)


if __name__ == "__main__":
    main()
