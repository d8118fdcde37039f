"""Answers from the LLM, within a hard time limit, made sayable, with a fallback line when the provider
fails or nothing sayable is left."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import openai
from openai import AsyncOpenAI
from openai._models import FinalRequestOptions
from openai.types.chat import ChatCompletionMessageParam

from callmemory.conversation.prompt import Message
from callmemory.conversation.speech import Spoken, speakable
from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    fallback: bool = False  # True when the caller heard the fallback line instead of an LLM answer


class Responder(Protocol):
    async def answer(self, messages: Sequence[Message]) -> Answer: ...


def _param(message: Message) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "user":
        return {"role": "user", "content": message.content}
    return {"role": "assistant", "content": message.content}


def _spoken(completion: object, max_chars: int) -> Spoken:
    """The first choice's message text of a chat completion's JSON, made sayable; "" when it has none.

    A choice that finished for "length" was cut at max_tokens, mid-sentence.
    """
    match completion:
        case {"choices": [{"message": {"content": str(content)}} as choice, *_]}:
            return speakable(content, cut_off=choice.get("finish_reason") == "length", max_chars=max_chars)
    return Spoken("")


class OpenAIResponder:
    """Any OpenAI-compatible chat completions endpoint, through the official SDK."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        timeout_s: float,
        fallback_line: str,
        max_chars: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._timeout_s = timeout_s
        self._fallback = fallback_line
        self._max_chars = max_chars
        self._metrics = metrics or Metrics()
        # The request goes to the SDK's own transport (its aiohttp session, pool and error mapping), with
        # the headers the SDK's `request()` would send merged as its HTTP client merges them, built once
        # at the first answer (inside the event loop, as `request()` builds them): not through
        # `request()` (options copies, header merges, auth layer, retry loop: the client makes no
        # retries), nor through the HTTP client's `send()`, whose URL and header merges, auth flow,
        # redirect loop, hooks and cookies have nothing to do for a prebuilt POST to an absolute URL.
        # CPU per request, one run of bench/llm_request.py: 0.62 ms this way, 0.94 through `send()`,
        # 1.36 through `request()`; a bare aiohttp request 0.45.
        self._request = FinalRequestOptions.construct(method="post", url=f"{client.base_url}chat/completions")
        self._url = httpx2.URL(self._request.url)
        self._sender: _Sender | None = None

    async def answer(self, messages: Sequence[Message]) -> Answer:
        with self._metrics.timed(self._metrics.llm_seconds, purpose="answer", outcome="ok") as labels:
            answer, reason = await self._ask(messages)
            if answer.fallback:
                labels["outcome"] = "fallback"
                self._metrics.llm_fallbacks.labels(reason=reason).inc()
        return answer

    async def _ask(self, messages: Sequence[Message]) -> tuple[Answer, str]:
        """The answer, and when it is the fallback line, why (timeout, error, empty, unsayable)."""
        started = time.perf_counter()
        try:
            # The SDK has its own timeout, but it restarts per retry and per read; this one is the
            # caller's patience, end to end.
            async with asyncio.timeout(self._timeout_s):
                # Not `chat.completions.create`: its walk of the typed parameters (every message
                # checked against the TypedDict unions) was the largest CPU cost of a speech turn
                # under load, and our messages are built well-typed already. The raw response, its
                # JSON read once here: the SDK's own parse (and its typed ChatCompletion) cost more
                # than the one string we read.
                completion = await self._post(
                    {
                        "model": self._model,
                        "messages": [_param(m) for m in messages],
                        # max_tokens, not max_completion_tokens: most compatible servers know only it.
                        "max_tokens": self._max_tokens,
                        "temperature": self._temperature,
                    }
                )
        except TimeoutError:
            log.warning(
                "LLM gave no answer within %.1f s; the caller hears the fallback line", self._timeout_s
            )
            return Answer(self._fallback, fallback=True), "timeout"
        except openai.OpenAIError as exc:
            # The error's text can quote the provider's echo of the prompt: its type and status only.
            log.warning("LLM request failed (%s); the caller hears the fallback line", describe_error(exc))
            return Answer(self._fallback, fallback=True), "error"
        except ValueError:  # a 2xx whose body is not JSON (nor UTF-8)
            log.warning("LLM answered with a body that is not JSON; the caller hears the fallback line")
            return Answer(self._fallback, fallback=True), "error"
        spoken = _spoken(completion, self._max_chars)
        if not spoken.text and not spoken.shaped:
            log.warning("LLM returned an empty answer; the caller hears the fallback line")
            return Answer(self._fallback, fallback=True), "empty"
        self._metrics.count_answer(spoken.shaped, sayable=bool(spoken.text))
        if not spoken.text:
            log.warning(
                "LLM answer had nothing sayable once shaped (%s); the caller hears the fallback line",
                ", ".join(sorted(spoken.shaped)),
            )
            return Answer(self._fallback, fallback=True), "unsayable"
        log.debug("LLM answered in %.0f ms", (time.perf_counter() - started) * 1000)
        return Answer(spoken.text), ""

    async def _post(self, body: dict[str, object]) -> object:
        """The chat completion's JSON; the SDK's errors, as its `request()` raises them (no retries)."""
        if self._sender is None:
            self._sender = _Sender.of(self._client, self._request, self._url)
        request = httpx2.Request(
            "POST",
            self._url,
            # As the SDK encodes a JSON body (openai._utils._json.openapi_dumps), for plain values.
            content=json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(),
            headers=self._sender.headers,
            extensions=self._sender.extensions,
        )
        try:
            response = await self._sender.transport.handle_async_request(request)
            try:
                content = await _content(response)
            finally:
                await response.aclose()
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=request) from exc
        except (httpx2.RequestError, ssl.SSLError) as exc:
            raise openai.APIConnectionError(request=request) from exc
        if not response.is_success:
            raise self._client._make_status_error_from_response(response)
        return json.loads(content)


async def _content(response: httpx2.Response) -> bytes:
    """The response's body. An answer not compressed is read from the transport's stream as it is:
    httpx2's `aread()` passes it through its chain of content decoders, which cost a third of reading
    a live answer's response. An error's body is read by `aread()`, for the SDK's error to quote."""
    if response.is_success and "content-encoding" not in response.headers:
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        return b"".join([chunk async for chunk in stream])
    return await response.aread()


@dataclass(frozen=True, slots=True)
class _Sender:
    """What every live answer's request shares: the SDK's headers and timeouts, and its transport."""

    headers: httpx2.Headers
    extensions: dict[str, Any]
    transport: httpx2.AsyncBaseTransport

    @classmethod
    def of(cls, client: AsyncOpenAI, options: FinalRequestOptions, url: httpx2.URL) -> _Sender:
        http = client._client
        timeout = (
            client.timeout if isinstance(client.timeout, httpx2.Timeout) else httpx2.Timeout(client.timeout)
        )
        return cls(
            headers=httpx2.Headers(http._merge_headers(client._build_headers(options))),
            extensions={"timeout": timeout.as_dict()},
            # Mounts and proxies (from the environment too) as the client would route the URL.
            transport=http._transport_for_url(url),
        )


class OfflineResponder:
    """Used when no API key is configured: the service still runs, and says plainly that it is offline."""

    def __init__(self, line: str) -> None:
        self._line = line

    async def answer(self, messages: Sequence[Message]) -> Answer:
        return Answer(self._line)
