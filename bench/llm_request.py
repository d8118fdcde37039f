"""CPU per chat completion request, by way of making it: the openai SDK's paths and a bare aiohttp request.

Each way posts the same body (a speech turn's prompt) to `callmemory stub-llm` (0 ms) in a process of
its own, one request at a time, and reads this process's CPU time per request (`time.process_time`).
The ways alternate, round after round, so that the machine's drift falls on all of them alike.

    ./dev run python bench/llm_request.py [--requests 500] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import uvloop
from openai import AsyncOpenAI, DefaultAioHttpClient, Omit
from openai._models import FinalRequestOptions
from openai.types.chat import ChatCompletion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from callmemory.conversation.responder import OpenAIResponder
from support.serving import stub_llm_process  # the tests' helpers, made importable above

BODY = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful phone agent. " * 20},
        {"role": "user", "content": "Question 0: where is my order 4417?"},
        {"role": "assistant", "content": "It left the warehouse yesterday."},
        {"role": "user", "content": "Question 1: where is my order 4417?"},
    ],
    "max_tokens": 150,
    "temperature": 0.3,
}
JSON_HEADERS = {"Content-Type": "application/json"}
# The SDK's telemetry headers (platform, runtime, retry count, read timeout): no OpenAI-compatible
# server needs them, and each header is parsed and copied several times per request on the way out.
TELEMETRY = (
    "X-Stainless-Lang",
    "X-Stainless-Package-Version",
    "X-Stainless-OS",
    "X-Stainless-Arch",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Async",
    "X-Stainless-Retry-Count",
    "X-Stainless-Read-Timeout",
)
NO_TELEMETRY: dict[str, Any] = dict.fromkeys(TELEMETRY, Omit())

Way = Callable[[], Awaitable[str]]


def content(completion: Any) -> str:
    return str(completion["choices"][0]["message"]["content"])


def ways(client: AsyncOpenAI, http: aiohttp.ClientSession, url: str, only: list[str]) -> dict[str, Way]:
    async def typed() -> str:
        completion = await client.post("/chat/completions", cast_to=ChatCompletion, body=BODY)
        return completion.choices[0].message.content or ""

    async def json_object() -> str:  # today's responder: the JSON as it came, no typed model
        return content(await client.post("/chat/completions", cast_to=object, body=BODY))

    async def raw_response() -> str:  # the SDK's httpx2.Response, the body parsed once here
        response = await client.post("/chat/completions", cast_to=httpx2.Response, body=BODY)
        return content(json.loads(response.content))

    async def raw_bytes() -> str:  # the same, with the body encoded here (no SDK body transform)
        response = await client.post(
            "/chat/completions",
            cast_to=httpx2.Response,
            content=json.dumps(BODY).encode(),
            options={"headers": JSON_HEADERS},
        )
        return content(json.loads(response.content))

    async def no_telemetry() -> str:  # today's responder, without the SDK's telemetry headers
        options: Any = {"headers": NO_TELEMETRY}
        return content(await client.post("/chat/completions", cast_to=object, body=BODY, options=options))

    async def raw_no_telemetry() -> str:
        options: Any = {"headers": NO_TELEMETRY}
        response = await client.post("/chat/completions", cast_to=httpx2.Response, body=BODY, options=options)
        return content(json.loads(response.content))

    # The options post() would build, built once; each request copies them (as request() does anyway)
    # with its own body. The URL is absolute: a relative one is parsed and merged with the base URL.
    template = FinalRequestOptions.construct(method="post", url=f"{client.base_url}chat/completions")

    async def request_template() -> str:  # the SDK's request(): retries, auth, errors; no post() wrapper
        options = template.model_copy(update={"json_data": BODY})
        response = await client.request(httpx2.Response, options)
        return content(json.loads(response.content))

    # The SDK's own HTTP client (httpx2 over its aiohttp transport), sent to as the responder does: the
    # headers request() would send (auth, user agent, telemetry), built once at the first request, and
    # the body encoded as the SDK encodes it. None of request()'s options copies, header merges, auth
    # layer or retry loop. Errors are mapped to the SDK's by the caller.
    sdk_headers: list[httpx2.Headers] = []

    async def sdk_http_client() -> str:
        if not sdk_headers:
            sdk_headers.append(client._build_headers(template))
        body = json.dumps(BODY, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        request = client._client.build_request(
            "POST", template.url, content=body, headers=sdk_headers[0], timeout=client.timeout
        )
        response = await client._client.send(request)
        return content(json.loads(response.content))

    # What ships: the responder's own request (conversation/responder.py), handed to the SDK's transport
    # (its aiohttp session, pool and error mapping) directly, none of httpx2's client layers.
    responder = OpenAIResponder(
        client, model="m", max_tokens=1, temperature=0, timeout_s=10, fallback_line="", max_chars=1
    )

    async def sdk_transport() -> str:
        return content(await responder._post(BODY))

    async def create() -> str:  # the SDK's documented way: typed parameters walked, typed result
        completion = await client.chat.completions.create(**BODY)  # type: ignore[call-overload]
        return str(completion.choices[0].message.content)

    async def bare_aiohttp() -> str:  # the floor: what null_service.py does
        async with http.post(url, data=json.dumps(BODY), headers=JSON_HEADERS) as reply:
            return content(json.loads(await reply.read()))

    chosen = {
        "create()": create,
        "post(cast_to=ChatCompletion)": typed,
        "post(cast_to=object)": json_object,
        "post(cast_to=httpx2.Response)": raw_response,
        "post(content=bytes, cast_to=Response)": raw_bytes,
        "post(cast_to=object), no telemetry": no_telemetry,
        "post(cast_to=Response), no telemetry": raw_no_telemetry,
        "request(options template), Response": request_template,
        "SDK's http client: build_request + send": sdk_http_client,
        "SDK's transport, as the responder sends": sdk_transport,
        "bare aiohttp": bare_aiohttp,
    }
    return {name: way for name, way in chosen.items() if not only or any(o in name for o in only)}


async def main(llm_url: str, requests: int, rounds: int, only: list[str]) -> None:
    http_client = DefaultAioHttpClient()
    client = AsyncOpenAI(api_key="sk-bench", base_url=llm_url, max_retries=0, http_client=http_client)
    async with aiohttp.ClientSession() as http:
        candidates = ways(client, http, llm_url.rstrip("/") + "/chat/completions", only)
        for way in candidates.values():  # connections opened, lazy imports done
            for _ in range(20):
                await way()
        cpu: dict[str, list[float]] = defaultdict(list)
        for _ in range(rounds):
            for name, way in candidates.items():
                started = time.process_time()
                for _ in range(requests):
                    await way()
                cpu[name].append((time.process_time() - started) / requests * 1000)
    await client.close()
    floor = statistics.median(cpu["bare aiohttp"])
    print(f"{requests} requests per way per round, {rounds} rounds alternating; CPU ms per request")
    print(f"{'way':<40}{'median':>8}{'min':>8}{'max':>8}{'x bare':>8}")
    for name, values in cpu.items():
        median = statistics.median(values)
        print(f"{name:<40}{median:>8.3f}{min(values):>8.3f}{max(values):>8.3f}{median / floor:>8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per way per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--way", action="append", default=[], help="only the ways whose name has this")
    args = parser.parse_args()
    with stub_llm_process() as llm:
        uvloop.run(main(llm, args.requests, args.rounds, [*args.way, "bare"] if args.way else []))
