"""How turns, summaries and event answers are written in Redis (JSON, times in epoch milliseconds)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from callmemory.core.events import Role
from callmemory.memory.types import CallSummary, EventAnswer, Turn


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(value: str | int | float) -> datetime:
    return datetime.fromtimestamp(int(float(value)) / 1000, UTC)


def encode_turn(turn: Turn) -> str:
    return json.dumps(
        {
            "s": turn.seq,
            "r": str(turn.role),
            "t": turn.text,
            "at": ms(turn.at),
            "c": turn.call_id,
            "f": int(turn.fallback),
        },
        ensure_ascii=False,
    )


# Each speech turn reads the caller's recent turns back, so the same few JSON strings are decoded over and
# over; a Turn is immutable, so one decoded copy serves them all.
@lru_cache(maxsize=4096)
def decode_turn(raw: str) -> Turn:
    data = json.loads(raw)
    return Turn(
        seq=int(data["s"]),
        role=Role(data["r"]),
        text=data["t"],
        at=from_ms(data["at"]),
        call_id=data["c"],
        fallback=bool(data.get("f")),
    )


def encode_summary(summary: CallSummary) -> str:
    return json.dumps(
        {"c": summary.call_id, "at": ms(summary.started_at), "t": summary.text}, ensure_ascii=False
    )


def decode_summary(raw: str) -> CallSummary:
    data = json.loads(raw)
    return CallSummary(call_id=data["c"], started_at=from_ms(data["at"]), text=data["t"])


def decode_answer(raw: str) -> EventAnswer:
    data = json.loads(raw)
    return EventAnswer(text=data["t"], fallback=bool(data.get("f")))


def encode_profile(profile: Mapping[str, Any]) -> str:
    return json.dumps(dict(profile), ensure_ascii=False)


def pairs(flat: list[Any]) -> dict[str, str]:
    """A hash as HGETALL returns it inside a script: a flat list of fields and values."""
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
