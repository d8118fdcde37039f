"""The Lua scripts of hot memory: `.lua` files shipped in the package's `scripts/` folder."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def source(name: str, *libraries: str) -> str:
    """The script `name`, after the library files it calls into (Redis scripts cannot import)."""
    folder = files("callmemory.memory.hot").joinpath("scripts")
    return "".join(folder.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in (*libraries, name))
