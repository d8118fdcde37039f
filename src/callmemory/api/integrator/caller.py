"""The caller a /v1 path names, checked against the API key's scope before a route sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Path

from callmemory.api.auth import IntegratorDep
from callmemory.api.deps import MemoryDep
from callmemory.core.errors import NotFound
from callmemory.core.identity import PHONE_SCHEMA, CallerId

CALLER_PATH: Final = "/bots/{bot_number}/callers/{caller_number}"
BotNumber = Annotated[
    str,
    Path(
        description="The bot's phone number, E.164 (URL-encode the +)",
        openapi_examples={"bot": {"summary": "A bot's number", "value": "+14155550000"}},
        json_schema_extra=PHONE_SCHEMA,  # checked with the number itself, into a 422 naming it
    ),
]
CallerNumber = Annotated[
    str,
    Path(
        description="The caller's phone number, E.164",
        openapi_examples={"caller": {"summary": "A caller's number", "value": "+14155551234"}},
        json_schema_extra=PHONE_SCHEMA,
    ),
]


@dataclass(frozen=True, slots=True)
class Addressed:
    """The caller a request's path names, checked against the key's scope."""

    id: CallerId
    bot_number: str  # as written in the path
    number: str  # as written in the path

    def not_found(self) -> NotFound:
        # One message for "unknown" and "not yours": nothing in the answer tells them apart.
        return NotFound(f"no caller {self.number} of bot {self.bot_number} for this key")


async def address(
    bot_number: BotNumber, caller_number: CallerNumber, memory: MemoryDep, who: IntegratorDep
) -> Addressed:
    caller = Addressed(memory.address(bot_number, caller_number), bot_number, caller_number)
    if who.bot_number is not None and memory.address(who.bot_number, caller_number) != caller.id:
        raise caller.not_found()
    return caller


CallerDep = Annotated[Addressed, Depends(address)]
