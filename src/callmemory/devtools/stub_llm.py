"""A local OpenAI-compatible chat completions endpoint, for demos, benchmarks and tests.

It answers every request by echoing the caller's last line ("You said: ..."), after an optional delay,
and keeps every request it received, so one can see exactly what the service put into a prompt (in memory
for tests; `callmemory stub-llm`, which may serve a benchmark for hours, only on disk with `--log`).
Summary requests (the summary job's instructions, whatever response_format they ask with) get a
mechanical summary: the rolling summary keeps the first call's words and adds the latest call's, so facts
from long ago stay visible in tests and demos. Like a real server it can refuse response formats it does
not know (as OpenAI's older models or llama-cpp-python's server do, each in its own words) and cut an
answer at max_tokens with finish_reason "length". `callmemory stub-llm` serves it; point OPENAI_BASE_URL
at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from callmemory.conversation.tokens import TokenCounter
from callmemory.devtools.local_server import served
from callmemory.memory.profile import OPEN_ISSUES
from callmemory.summaries.summariser import INSTRUCTIONS


async def hold(seconds: float) -> None:
    """Sleep for `seconds`, to within a millisecond.

    A plain asyncio.sleep overshoots on some virtual machines by a percent or more of its length (4-6 ms
    of a 400 ms sleep on the benchmark machine), which a benchmark would count as the service's own
    time. So most of the time is slept at once and the rest in shorter and shorter steps.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0.001:  # noqa: ASYNC110 - waiting for a time, not an event
        await asyncio.sleep(left * 0.8)
    await asyncio.sleep(max(0.0, deadline - loop.time()))


def echo(messages: list[dict[str, Any]]) -> str:
    return f"You said: {messages[-1]['content']}"


def summarise(messages: list[dict[str, Any]]) -> str:
    """A summary job's answer, made without understanding: what the caller said, quoted."""
    request = json.loads(messages[-1]["content"])
    said = [
        line.removeprefix("Caller: ")
        for line in request["call"]["transcript"].splitlines()
        if line.startswith("Caller: ")
    ]
    call_summary = "The caller said: " + " ".join(said) if said else "The caller said nothing."
    previous = request["previous_summary"]
    first = previous.split(" | Latest: ")[0] if previous else call_summary
    # Four of the caller's words: a reference to the call; six in a row would be read back to the caller,
    # and the service refuses such a greeting (summaries/greeting.py).
    topic = " ".join(said[0].split()[:4]).rstrip(".,;:!?") if said else ""
    return json.dumps(
        {
            "call_summary": call_summary,
            "caller_summary": f"{first} | Latest: {call_summary}",
            "profile": {OPEN_ISSUES.key: said[:1]},
            "next_greeting": f'Welcome back! Is it still about "{topic}"?' if topic else "Welcome back!",
        }
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer with the finish_reason a server would give it ("length": cut at max_tokens)."""

    text: str
    finish_reason: str = "stop"


Answerer = Callable[[list[dict[str, Any]]], "str | Reply"]
# How a server says it does not know a response_format. OpenAI: 400 naming the parameter. llama-cpp-python:
# its request model allows only "text" and "json_object", and its route wraps the validation error, like
# any other, as a 500.
Refusal = Literal["openai", "llama-cpp-python"]


def is_summary(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or [{}]
    return bool(messages[0].get("content") == INSTRUCTIONS)


def refusal(style: Refusal, kind: str) -> tuple[int, dict[str, Any]]:
    if style == "openai":
        message = f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model."
        error = {
            "message": message,
            "type": "invalid_request_error",
            "param": "response_format",
            "code": None,
        }
        return 400, {"error": error}
    detail: list[dict[str, Any]] = [
        {
            "type": "literal_error",
            "loc": ("body", "response_format", "type"),
            "msg": "Input should be 'text' or 'json_object'",
            "input": kind,
            "ctx": {"expected": "'text' or 'json_object'"},
        }
    ]
    # As llama-cpp-python 0.3.36 answers it (its message then quotes where in its code it was raised).
    message = f"1 validation error:\n  {detail[0]}\n"
    return 500, {"error": {"message": message, "type": "internal_server_error", "param": None, "code": None}}


@dataclass
class StubLLM:
    reply: Answerer = echo
    summary: Answerer = summarise  # for summary requests
    delay_s: float = 0.0
    summary_delay_s: float | None = None  # a summary's own delay; None: delay_s
    status: int = 200  # anything else: the provider fails with that status
    finish_reason: str = "stop"  # of every plain answer; "length": cut at max_tokens, as a model does
    refuses: frozenset[str] = frozenset()  # response_format types refused, as `refusal` says it
    refusal: Refusal = "openai"
    cut_at_max_tokens: bool = False  # a real server's answer ends at max_tokens (cl100k tokens here)
    context_tokens: int | None = None  # a prompt plus max_tokens beyond this is refused, as llama.cpp does
    requests: list[dict[str, Any]] = field(default_factory=list)
    keep_requests: bool = True  # False for a long-running stub: `requests` would grow without end
    log_path: Path | None = None  # each request appended as one JSON line
    in_flight: int = 0  # requests received and not yet answered
    most_in_flight: int = 0
    # (kind, received, answered) of each request, kind "answer" or "summary", on the monotonic clock
    timeline: list[tuple[str, float, float]] = field(default_factory=list)

    async def completions(self, request: Request) -> JSONResponse:
        body = await request.json()
        if self.keep_requests:
            self.requests.append(body)
        if self.log_path is not None:
            with self.log_path.open("a") as log:
                log.write(json.dumps(body) + "\n")
        summary = is_summary(body)
        kind = (body.get("response_format") or {}).get("type")
        if kind in self.refuses:
            status, error = refusal(self.refusal, kind)
            return JSONResponse(error, status_code=status)
        if (too_long := self._beyond_context(body)) is not None:
            return JSONResponse(too_long, status_code=400)
        received = time.monotonic()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            delay = self.summary_delay_s if summary and self.summary_delay_s is not None else self.delay_s
            if delay:
                await hold(delay)
        finally:
            self.in_flight -= 1
            if self.keep_requests:
                self.timeline.append(("summary" if summary else "answer", received, time.monotonic()))
        if self.status != 200:
            error = {"error": {"message": "stub provider failure", "type": "server_error"}}
            return JSONResponse(error, status_code=self.status)
        answer = (self.summary if summary else self.reply)(body["messages"])
        reply = answer if isinstance(answer, Reply) else Reply(answer, self.finish_reason)
        if self.cut_at_max_tokens and body.get("max_tokens") is not None:
            reply = _cut(reply, int(body["max_tokens"]))
        return JSONResponse(completion(reply.text, body.get("model", "stub"), reply.finish_reason))

    def _beyond_context(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """llama-cpp-python's answer to a request longer than the model's context, else None."""
        if self.context_tokens is None:
            return None
        prompt = sum(_tokens().count(m["content"]) for m in body["messages"])
        completion_tokens = int(body.get("max_tokens") or 0)
        if prompt + completion_tokens <= self.context_tokens:
            return None
        message = (
            f"This model's maximum context length is {self.context_tokens} tokens. However, you requested "
            f"{prompt + completion_tokens} tokens ({prompt} in the messages, {completion_tokens} in the "
            "completion). Please reduce the length of the messages or completion."
        )
        error = {"message": message, "type": "invalid_request_error", "param": "messages"}
        return {"error": {**error, "code": "context_length_exceeded"}}

    def prompt_text(self, index: int = -1) -> str:
        """Everything the LLM was shown in one request, as one string."""
        return "\n".join(m["content"] for m in self.requests[index]["messages"])


@functools.cache
def _tokens() -> TokenCounter:
    return TokenCounter()


def _cut(reply: Reply, max_tokens: int) -> Reply:
    if _tokens().count(reply.text) <= max_tokens:
        return reply
    return Reply(_tokens().keep_first(reply.text, max_tokens), "length")


def completion(text: str, model: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": text}}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class StubServer:
    """Serves whichever StubLLM is in `.stub` at the moment, so tests can swap behaviour per test."""

    def __init__(self, stub: StubLLM | None = None) -> None:
        self.stub = stub or StubLLM()
        self.base_url = ""

    async def _completions(self, request: Request) -> JSONResponse:
        return await self.stub.completions(request)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])

    @contextlib.asynccontextmanager
    async def running(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[StubServer]:
        async with served(self.app(), host=host, port=port, lifespan="off") as url:
            self.base_url = f"{url}/v1"
            yield self
