"""The operator's commands on the stores: forget, export, stats, quarantine, summaries."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from callmemory.cli.common import Commands, store_settings, subcommand
from callmemory.settings import Settings


def _admin(command: str, run: Callable[[Settings], Coroutine[Any, Any, object]]) -> object:
    import asyncio

    from callmemory.ops.admin import AdminError

    try:
        return asyncio.run(run(store_settings(command)))
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
