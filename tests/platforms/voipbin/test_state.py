"""VoIPBin's own Redis state runs from the script files shipped in platforms/voipbin/scripts/."""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis

from callmemory.memory.hot.lua import read
from callmemory.platforms.voipbin import state
from callmemory.platforms.voipbin.state import VoipbinState


def _wrappers() -> list[type[state._Script]]:
    return state._Script.__subclasses__()


def test_every_script_file_is_run_by_one_wrapper() -> None:
    folder = files("callmemory.platforms.voipbin").joinpath("scripts")
    on_disk = {f.name.removesuffix(".lua") for f in folder.iterdir() if f.name.endswith(".lua")}

    assert sorted(w.name for w in _wrappers()) == sorted(on_disk)


async def test_every_script_compiles_and_is_sent_by_the_hash_redis_gives_it(redis: Redis) -> None:
    for wrapper in _wrappers():
        sha = await redis.script_load(read("callmemory.platforms.voipbin", wrapper.name))
        assert sha == wrapper(redis).sha


async def test_a_held_event_is_handed_back_once_its_link_arrives(redis: Redis) -> None:
    vb = VoipbinState(redis, prefix="cmtest-vbstate", ttl_s=60)
    try:
        held = await vb.resolve_or_hold("tr", "t-1", '{"raw": 1}')
        released = await vb.link("tr", "t-1", "call-1")
        resolved = await vb.resolve_or_hold("tr", "t-1", '{"raw": 2}')
    finally:
        await redis.delete("cmtest-vbstate:vb:{tr:t-1}:link", "cmtest-vbstate:vb:{tr:t-1}:held")

    assert (held, released, resolved) == (None, ['{"raw": 1}'], "call-1")
