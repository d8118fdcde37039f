"""The developer's tools: the stub LLM, the MCP server and the simulated phone call."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from callmemory.cli.common import OWNED, Commands, claim, load_settings, subcommand, with_embedded_defaults
from callmemory.devtools.datadir import DataDirLock
from callmemory.platforms import registry
from callmemory.settings import Settings


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

    settings = load_settings()
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
        settings = load_settings()
    else:
        os.environ["CALLMEMORY_DATA_DIR"] = args.data_dir
        settings = load_settings()
        OWNED.append(claim(settings, "simulate"))
        # Status lines to stderr: stdout carries the conversation.
        with contextlib.redirect_stdout(sys.stderr):
            settings = with_embedded_defaults(settings)
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
