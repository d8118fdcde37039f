"""The Lua scripts: files shipped in the package, each run by a wrapper, and the greeting rule they hold."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import pytest
from redis.asyncio import Redis

from callmemory.core.events import Role
from callmemory.core.identity import CallerId
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.keys import Keys
from callmemory.memory.hot.lua import Script, source
from callmemory.memory.hot.store import HotSettings, HotStore
from callmemory.memory.types import CallerMemory, Turn

GREETINGS = Greetings(
    new="Hello, first-timer!",
    returning='Welcome back! Still about "{topic}"? ({topic})',
    returning_no_topic="Welcome back, you.",
)
CALLER = CallerId(bot_number="+14155550000", caller_hash="ef" * 16)


def _wrappers() -> list[type[Script]]:
    return Script.__subclasses__()


def _script_files() -> set[str]:
    folder = files("callmemory.memory.hot").joinpath("scripts")
    return {f.name.removesuffix(".lua") for f in folder.iterdir() if f.name.endswith(".lua")}


def test_every_script_file_is_run_by_a_wrapper_or_included_by_one() -> None:
    used = {w.name for w in _wrappers()} | {lib for w in _wrappers() for lib in w.libraries}

    assert used == _script_files()
    assert len({w.name for w in _wrappers()}) == len(_wrappers())  # one wrapper per script


def test_a_script_is_its_libraries_then_itself() -> None:
    text = source("start_call", "push_turn", "greeting")

    assert text.startswith(source("push_turn"))
    assert source("greeting") in text
    assert text.endswith(source("start_call"))


async def test_every_script_compiles_and_is_sent_by_the_hash_redis_gives_its_whole_text(redis: Redis) -> None:
    for wrapper in _wrappers():
        sha = await redis.script_load(source(wrapper.name, *wrapper.libraries))
        assert sha == wrapper(redis, Keys("cmtest-lua"), HotSettings()).sha


def _memory(**fields: Any) -> CallerMemory:
    return CallerMemory(caller=CALLER, **fields)


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        (_memory(), "Hello, first-timer!"),
        (_memory(greeting="Prepared.", call_count=1, last_topic="a"), "Prepared."),
        (
            _memory(call_count=1, last_topic="100% refund {topic} please"),
            'Welcome back! Still about "100% refund {topic} please"? (100% refund {topic} please)',
        ),
        (_memory(call_count=3), "Welcome back, you."),
        (
            _memory(recent=(Turn(1, Role.CALLER, "Hi", datetime(2026, 1, 1, tzinfo=UTC), "c"),)),
            "Welcome back, you.",
        ),
    ],
    ids=["new", "prepared", "topic-with-specials", "no-topic", "turns-only"],
)
async def test_the_greeting_rule(redis: Redis, memory: CallerMemory, expected: str) -> None:
    hot = HotStore(redis, HotSettings(prefix="cmtest-lua"))

    assert await hot.greeting_for(memory, GREETINGS) == expected
