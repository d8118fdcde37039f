"""Redis Lua scripts as `.lua` files shipped in a package's `scripts/` folder: hot memory's, and those
of platforms that keep state of their own in Redis (VoIPBin).

Each script is run through a small wrapper (a subclass beside the code that uses it) whose `__call__`
takes named arguments and builds the script's KEYS and ARGV in one place, so that no caller spells out
a positional list that must match the Lua.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, ClassVar, Final

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import NoScriptError

from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.keys import Keys
from callmemory.memory.hot.server import ServerRedis
from callmemory.memory.hot.settings import HotSettings

_HOT: Final = "callmemory.memory.hot"

# A pipeline of either topology; a Step queues commands into one.
Pipe = Pipeline | ClusterPipeline
Step = Callable[[Pipe], None]


@cache
def read(package: str, name: str, *libraries: str) -> str:
    """`package`'s script `name`, after the library files it calls into (Redis scripts cannot import)."""
    folder = files(package).joinpath("scripts")
    return "".join(folder.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in (*libraries, name))


def source(name: str, *libraries: str) -> str:
    """A script of hot memory's own."""
    return read(_HOT, name, *libraries)


class LuaScript:
    """A script registered with a client; subclasses name it and give `__call__` its named arguments."""

    package: ClassVar[str]
    name: ClassVar[str]
    libraries: ClassVar[tuple[str, ...]] = ()

    def __init__(self, redis: HotRedis) -> None:
        self._redis = redis
        self._script = redis.register_script(read(self.package, self.name, *self.libraries))

    @property
    def sha(self) -> str:
        return str(self._script.sha)

    def invoke(self, keys: Sequence[str], args: Sequence[str | int]) -> Invocation:
        return Invocation(self, tuple(keys), tuple(args))

    @property
    def redis(self) -> HotRedis:
        return self._redis

    async def run(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        return await self.invoke(keys, args).run()

    async def load(self) -> None:
        await self._redis.script_load(self._script.script)


class Script(LuaScript):
    """A script of hot memory: its wrapper also knows the key names and the settings."""

    package = _HOT

    def __init__(self, redis: HotRedis, keys: Keys, settings: HotSettings) -> None:
        super().__init__(redis)
        self._keys = keys
        self._s = settings


@dataclass(frozen=True, slots=True)
class Invocation:
    """One run of a script with its KEYS and ARGV: run alone, or queued into a pipeline."""

    script: LuaScript
    keys: tuple[str, ...]
    args: tuple[str | int, ...]

    async def run(self) -> Any:
        # In a pipeline of its own: sent by hash alone, loaded only when the server does not know it.
        [reply] = await pipelined(self.script.redis, self.queue, script=self.script)
        return reply

    def queue(self, pipe: Pipe) -> None:
        # By hash alone: see pipelined(). As a raw command: redis-py's cluster pipeline refuses its own
        # evalsha() (it cannot know the keys), but routes a raw EVALSHA by them, which share one slot.
        pipe.execute_command("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


async def pipelined(redis: HotRedis, *steps: Step, script: LuaScript) -> list[Any]:
    """Run the commands that `steps` queue, which include `script`, in order, without a transaction;
    their replies, in the same order.

    On one server they all go in one pipeline, in one round trip, and run in order. A cluster sends
    the commands of one pipeline to their shards at once, in no order between shards: there each step
    is sent once the step before it has been answered, so that a failure part-way leaves the effects of
    the earlier steps only, which is what the order of the steps is chosen for.

    redis-py's own way of running a script in a pipeline first asks the server whether it knows the
    script: a second round trip on every call. Here the script is sent by its hash alone, and loaded
    only when the server answers that it does not know it (a restarted or flushed Redis, a promoted
    replica); the commands are then sent again, so they must be safe to repeat.
    """
    try:
        return await in_order(redis, *steps)
    except NoScriptError:
        await script.load()
        return await in_order(redis, *steps)


async def in_order(redis: HotRedis, *steps: Step) -> list[Any]:
    """Run the commands `steps` queue, step after step (see pipelined); their replies."""
    if not isinstance(redis, RedisCluster):
        return await _run(redis, steps)
    replies: list[Any] = []
    for step in steps:
        replies += await _run(redis, (step,))
    return replies


async def _run(redis: HotRedis, steps: tuple[Step, ...]) -> list[Any]:
    if isinstance(redis, ServerRedis):
        # Queued by redis-py's pipeline (its commands' arguments and replies' callbacks), sent by the
        # client's lean round trip (see server.py).
        queue = redis.pipeline(transaction=False)
        for step in steps:
            step(queue)
        return await redis.round_trip(queue.command_stack)
    async with redis.pipeline(transaction=False) as pipe:
        for step in steps:
            step(pipe)
        return list(await pipe.execute())
