"""callmemory: persistent caller memory for AI voice bots. The service and the operator's commands.

Without DATABASE_URL and REDIS_URL every command works on the embedded servers of the data directory
(CALLMEMORY_DATA_DIR, default ./.callmemory): the running `serve`'s, or ones it starts for itself.
"""

# Each command is a function and, below it, the @subcommand block that adds its parser, in the module of
# its group: a new command is one more such pair, and `callmemory --help` lists the commands group by
# group (GROUPS), each group's in the order of its module.

from __future__ import annotations

import argparse
from collections.abc import Sequence

from callmemory.cli import admin, devtools, serve
from callmemory.cli.common import SUBCOMMANDS

GROUPS = (serve, devtools, admin)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="callmemory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        for add in SUBCOMMANDS:
            if add.__module__ == group.__name__:
                add(commands)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.run(args)
