"""The telephony platforms this service speaks: the one list the app and the CLI read.

Adding a platform is a folder under platforms/ (routes, wire format, settings mixin, simulator, and a
`platform.py` whose class satisfies base.Platform), one line here, and its settings mixin in `Settings`.
Named by import path and loaded on first use: the CLI lists the names without importing every platform's
routes (a second of start-up for `callmemory --help`).
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Final, cast

from callmemory.platforms.base import Platform

_PLATFORMS: Final = {
    "seed": "callmemory.platforms.seed.platform:Seed",
    "voipbin": "callmemory.platforms.voipbin.platform:Voipbin",
    "twilio": "callmemory.platforms.twilio.platform:Twilio",
}


def names() -> list[str]:
    return list(_PLATFORMS)


@cache
def named(name: str) -> Platform:
    module, _, cls = _PLATFORMS[name].partition(":")
    return cast(Platform, getattr(importlib.import_module(module), cls)())


def platforms() -> tuple[Platform, ...]:
    return tuple(named(name) for name in _PLATFORMS)
