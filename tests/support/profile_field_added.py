"""Run as `python -m support.profile_field_added`: adds a field to the profile spec before anything
reads it, then prints as JSON where that field shows up. A program of its own because its readers take
the spec in at import."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx

from callmemory.memory import profile

ADDED = profile.ProfileField("pets", "Pets", "the caller's pets")


async def _mcp_description() -> str:
    from callmemory.ops.mcp import CallmemoryApi, build_server

    async with httpx.AsyncClient(base_url="http://127.0.0.1:1") as http:
        tools = await build_server(CallmemoryApi(http)).list_tools()
    return next(t.description or "" for t in tools if t.name == "caller_memory")


def main() -> None:
    # What "add a profile field" is: one more entry in the spec (Final to everything but this probe).
    profile.PROFILE = (*profile.PROFILE, ADDED)  # type: ignore[misc]

    from callmemory.app import create_app
    from callmemory.conversation.prompt import PromptBuilder
    from callmemory.conversation.tokens import TokenCounter
    from callmemory.core.identity import CallerId
    from callmemory.memory.types import CallerMemory
    from callmemory.settings import Settings
    from callmemory.summaries.summariser import INSTRUCTIONS

    cleaned = profile.clean_profile({"name": "Ada", ADDED.key: ["a cat", 7], "hobbies": ["golf"]})
    memory = CallerMemory(CallerId("+14155550000", "ab" * 32), call_count=1, profile=cleaned)
    schemas = create_app(Settings()).openapi()["components"]["schemas"]
    documented = [schemas[m]["properties"]["profile"]["description"] for m in ("CallerOut", "MemoryBrief")]
    json.dump(
        {
            "cleaned": cleaned,
            "prompt": PromptBuilder("You are a bot.", TokenCounter(), 500).build(memory, None).context,
            "summariser": INSTRUCTIONS,
            "api": documented,
            "mcp": asyncio.run(_mcp_description()),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
