"""`callmemory mcp`: an MCP server (stdio) that lets an agent read and erase callers' memory.

It is a thin client of a running service's integrator API (/v1), authenticated with one of its API
keys, rather than a second way into Redis and Postgres: the API stays the one place that scopes a key
to its bot, so a bot-scoped key can no more see another bot's callers here than over HTTP. Every
failure (service unreachable, key refused, bad number, unknown caller) is a tool error with a message
an agent can act on; none of them stops the server.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import quote

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from callmemory import __version__
from callmemory.api.integrator.schemas import (
    CallList,
    CallVerified,
    ErasureReceiptOut,
    MemoryBrief,
    SearchResults,
)
from callmemory.core.storable import text_problem
from callmemory.memory.profile import profile_keys

_Model = TypeVar("_Model", bound=BaseModel)
_E164: Final = " (phone numbers are E.164: +, country code, number, e.g. +14155551234)"

INSTRUCTIONS: Final = (
    "callmemory remembers the callers of AI voice bots: who called which bot number, what they wanted, "
    "what was promised. A caller is always named by two phone numbers in E.164 format (+, country code, "
    "number, no spaces): the bot's number they dialled and their own. To answer 'what did this caller "
    "want last time?' call caller_memory; for the individual calls, recent_calls; for a detail from long "
    "ago, search_calls; to delete everything about a caller at their request, erase_caller "
    "(irreversible); once the bot has checked who is on a live call (a PIN, a one-time code), verify_caller."
)

BotNumber = Annotated[
    str,
    Field(
        description="The voice bot's phone number, the one the caller dialled, in E.164 format "
        "(+, country code, number; no spaces), e.g. +14155550000.",
        examples=["+14155550000"],
    ),
]
CallerNumber = Annotated[
    str,
    Field(
        description="The caller's phone number in E.164 format (+, country code, number; no spaces), "
        "e.g. +14155551234.",
        examples=["+14155551234"],
    ),
]


class CallmemoryApi:
    """The /v1 requests the tools make, with every failure turned into a ToolError that explains it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def caller(
        self,
        model: type[_Model],
        method: str,
        bot_number: str,
        caller_number: str,
        suffix: str = "",
        *,
        params: dict[str, Any] | None = None,
    ) -> _Model:
        for field, number in (("bot_number", bot_number), ("caller_number", caller_number)):
            # The service would see a / as a path separator (even quoted) and answer a bare 404.
            if "/" in number:
                raise ToolError(f"invalid `{field}`: {number!r} is not a phone number{_E164}")
            # Refused here, as the service would: a lone surrogate cannot even be put into its URL.
            problem = text_problem(number)
            if problem is not None:
                raise ToolError(f"invalid `{field}`: it holds {problem}{_E164}")
        path = f"/v1/bots/{quote(bot_number, safe='')}/callers/{quote(caller_number, safe='')}{suffix}"
        try:
            response = await self._http.request(method, path, params=params)
        except httpx.TimeoutException as exc:
            raise ToolError(
                f"callmemory at {self._http.base_url} did not answer in time ({type(exc).__name__}); "
                "try again shortly"
            ) from exc
        except httpx.TransportError as exc:
            raise ToolError(
                f"callmemory is not reachable at {self._http.base_url} ({type(exc).__name__}: {exc}); "
                "is the service running, and is CALLMEMORY_MCP_URL its address?"
            ) from exc
        if not response.is_success:
            raise ToolError(self._refusal(response, bot_number, caller_number))
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:  # json.JSONDecodeError is a ValueError
            raise ToolError(
                f"{self._http.base_url} answered HTTP {response.status_code} with something that is not "
                "callmemory's /v1 API; is CALLMEMORY_MCP_URL a callmemory service?"
            ) from exc

    def _refusal(self, response: httpx.Response, bot_number: str, caller_number: str) -> str:
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        detail = str(body.get("detail") or response.reason_phrase)
        status = response.status_code
        if status == 401:
            return (
                f"callmemory refused the API key ({detail}); set CALLMEMORY_MCP_API_KEY to one of the "
                "service's CALLMEMORY_API_KEYS"
            )
        if status == 404 and detail.startswith("no caller"):
            # The service gives one answer for "unknown" and "another bot's": so does this message.
            return (
                f"no such caller: nothing is stored about {caller_number} calling {bot_number} "
                "that this API key may see"
            )
        if status == 404:  # not the API's 404: no such route
            return (
                f"{self._http.base_url} has no {response.request.url.path} ({detail}); is CALLMEMORY_MCP_URL "
                "a callmemory service of this version?"
            )
        if status == 422:
            field = body.get("field")
            about = f" `{field}`" if field else ""
            return f"invalid{about}: {detail}{_E164}"
        if status == 503:
            return f"callmemory is temporarily unavailable ({detail}); try again shortly"
        return f"callmemory at {self._http.base_url} answered HTTP {status}: {detail}"


def build_server(api: CallmemoryApi) -> MCPServer:
    server = MCPServer("callmemory", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")

    @server.tool(
        annotations=ToolAnnotations(title="A caller's memory", read_only_hint=True),
        # Not a docstring, which could not name the profile's keys from their spec.
        description=f"""What is remembered about one caller of one bot: use it to answer "what did this
        caller want last time?" or to prepare for their next call.

        Returns `returning` (false: nothing is remembered, they never called or were erased),
        `call_count` (their finished calls), `last_topic` (what they called about last time, in their
        own words), `profile` ({profile_keys()}), `summary` (a rolling summary
        of all their calls), `recent_calls` (call id, start time and summary of their latest calls,
        newest first) and `brief`: all of that as one text, exactly the memory the voice bot itself is
        given. Summaries are written by an LLM shortly after each call ends, so the latest call may not
        be summarised yet.
        """,
    )
    async def caller_memory(bot_number: BotNumber, caller_number: CallerNumber) -> MemoryBrief:
        return await api.caller(MemoryBrief, "GET", bot_number, caller_number, "/brief")

    @server.tool(annotations=ToolAnnotations(title="A caller's recent calls", read_only_hint=True))
    async def recent_calls(
        bot_number: BotNumber,
        caller_number: CallerNumber,
        limit: Annotated[int, Field(ge=1, le=100, description="How many calls at most, newest first.")] = 10,
    ) -> CallList:
        """The caller's finished calls to this bot, newest first, each with its summary.

        Each call has `platform` and `call_id` (which identify it), `started_at` and `ended_at` (UTC),
        `end_reason`, `turn_count` (lines spoken) and `summary` (what the call was about; null until the
        summary has been written, shortly after the call). Fails with "no such caller" when nothing
        is stored about this caller for this bot.
        """
        return await api.caller(CallList, "GET", bot_number, caller_number, "/calls", params={"limit": limit})

    @server.tool(annotations=ToolAnnotations(title="Search a caller's calls", read_only_hint=True))
    async def search_calls(
        bot_number: BotNumber,
        caller_number: CallerNumber,
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=2000,
                description="What to look for, in words the caller might have used, e.g. 'dishwasher "
                "serial number'.",
            ),
        ],
        limit: Annotated[int, Field(ge=1, le=50, description="How many matches at most, best first.")] = 10,
    ) -> SearchResults:
        """Search everything the caller said to this bot, in all their finished calls, and the calls'
        summaries: use it for a detail from long ago ("the serial number of the dishwasher I told you
        about in March") that the summary in caller_memory no longer holds.

        Returns `results`, best match first: each with `call_id` and `started_at` (the call it was said
        in), `kind` ("turn" or "summary"), `role` ("caller" or "bot"), `text` and `rank`. Words that are
        rare in the caller's calls count for more than common ones. Calls still in progress are not
        searched. Fails with "no such caller" when this API key may see nothing about this caller.
        """
        params = {"q": query, "limit": limit}
        return await api.caller(SearchResults, "GET", bot_number, caller_number, "/search", params=params)

    @server.tool(
        annotations=ToolAnnotations(
            title="Erase a caller", read_only_hint=False, destructive_hint=True, idempotent_hint=True
        )
    )
    async def erase_caller(bot_number: BotNumber, caller_number: CallerNumber) -> ErasureReceiptOut:
        """Permanently delete everything stored about a caller of this bot (e.g. on their request to
        be forgotten): calls, transcripts, summaries, profile, prepared greeting, queued summaries and
        calls in progress. Irreversible; only do it when the user asked for it.

        Returns the erasure receipt: `erased_at` and, under `deleted`, what was removed (calls, turns,
        summaries, profile, Redis keys, live calls cut off). Nothing from before `erased_at` is ever
        stored again. Erasing a caller twice, or one never seen, is harmless and deletes nothing more.
        """
        return await api.caller(ErasureReceiptOut, "DELETE", bot_number, caller_number)

    @server.tool(
        annotations=ToolAnnotations(
            title="Verify a live call's caller", read_only_hint=False, idempotent_hint=True
        )
    )
    async def verify_caller(
        bot_number: BotNumber,
        caller_number: CallerNumber,
        call_id: Annotated[str, Field(min_length=1, max_length=200, description="The live call's id.")],
        platform: Annotated[
            str,
            Field(
                pattern=r"^[a-z]{1,32}$",
                description="The platform the call came through: api (recorded through the /v1 API), "
                "seed, twilio or voipbin.",
            ),
        ] = "api",
    ) -> CallVerified:
        """Mark a live call's caller as verified, once the bot has checked who is calling (a PIN, a
        one-time code sent to the number on file). Caller ID alone proves nothing: anyone can present
        any number. From the call's next turn on it reads the caller's memory, and what it said before
        the check counts as the caller's. Returns `status`: verified, or already_verified.
        """
        if "/" in call_id:
            raise ToolError(f"invalid `call_id`: {call_id!r} may not hold a /")
        suffix = f"/live/{quote(call_id, safe='')}/verify"
        return await api.caller(
            CallVerified, "POST", bot_number, caller_number, suffix, params={"platform": platform}
        )

    return server


async def serve_stdio(url: str, api_key: str | None, timeout_s: float) -> None:
    """Serve MCP on stdin/stdout until the client closes them."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout_s) as http:
        await build_server(CallmemoryApi(http)).run_stdio_async()
