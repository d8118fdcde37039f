"""The `callmemory` command as a child process, configured like the test's app, so it runs exactly as
an operator runs it while the test's event loop goes on serving."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from callmemory.settings import Settings


@dataclass(frozen=True, slots=True)
class Ran:
    status: int
    stdout: str
    stderr: str


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child process use the test's database, Redis prefix and LLM."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"}
        and not k.startswith("CALLMEMORY_")
    }
    assert settings.database_url
    assert settings.redis_url
    assert settings.hash_secret
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        CALLMEMORY_REDIS_PREFIX=settings.redis_prefix,
        CALLMEMORY_HASH_SECRET=settings.hash_secret.get_secret_value(),
        CALLMEMORY_ENVIRONMENT="test",
        CALLMEMORY_SUMMARY_WORKER="false",
    )
    if settings.openai_base_url and settings.openai_api_key:
        env.update(
            OPENAI_BASE_URL=settings.openai_base_url,
            OPENAI_API_KEY=settings.openai_api_key.get_secret_value(),
        )
    env.update(extra)
    return env


async def callmemory(env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None) -> Ran:
    """The command run to its end; in `cwd` when given (where its relative defaults, such as simulate's
    data directory, land)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callmemory.cli",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
