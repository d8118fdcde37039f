"""After a call: one LLM request that summarises it, folds it into the caller's rolling summary and
profile, and prepares the greeting for their next call.

Runs in the background worker, never while a caller waits, with its own time limit; a failure raises
SummaryFailed and the worker retries later.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from typing import Any, Final

import openai
from openai import AsyncOpenAI

from callmemory.conversation.tokens import TokenCounter
from callmemory.core.events import Role
from callmemory.memory.profile import PROFILE, ProfileField, clean_profile
from callmemory.observability.logs import describe_error
from callmemory.summaries.queue import SummaryResult, SummaryTask


def _and(items: list[str]) -> str:
    return f"{', '.join(items[:-1])} and {items[-1]}" if len(items) > 1 else "".join(items)


def _named(field: ProfileField) -> str:
    return f'"{field.key}" ({field.description})' if field.description else f'"{field.key}"'


def _profile_line() -> str:
    """The instructions' line on the profile, said from its spec."""
    shapes = [f"{_named(f)} (string or null)" for f in PROFILE if not f.many]
    if lists := [_named(f) for f in PROFILE if f.many]:
        shapes.append(f"the lists {_and(lists)}, each of short strings")
    # Wrapped where the hand-written line was, so that the instructions stay exactly as they were.
    return textwrap.fill(f'- "profile": an object with {_and(shapes)}.', width=88, subsequent_indent="  ")


INSTRUCTIONS: Final = f"""You keep a phone assistant's memory of one caller.
You get JSON with the caller's previous rolling summary, their profile, and the transcript of the call
that just ended. Answer with one JSON object and nothing else, with these keys:
- "call_summary": two or three sentences on what this call was about and how it ended.
- "caller_summary": the updated rolling summary of everything worth remembering about this caller
  across all calls (at most 120 words). Keep account numbers, order numbers, names and dates exactly;
  drop what is resolved and no longer useful.
{_profile_line()}
- "next_greeting": one or two short spoken sentences to greet this caller on their next call,
  welcoming them back and referring to what is most likely still open. No lists, markdown or emoji,
  and never a phone number."""

_MAX_SUMMARY_CHARS: Final = 2000
_MAX_GREETING_CHARS: Final = 300
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class SummaryFailed(Exception):
    """The LLM gave no usable summary (timeout, provider error, not the JSON asked for)."""


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SummaryFailed(f"the summary has no {key!r}")
    return " ".join(value.split())[:limit]


def parse_result(content: str) -> SummaryResult:
    """The LLM's answer, checked: models wrap JSON in prose or code fences, so the object is cut out."""
    found = _JSON_OBJECT.search(content)
    if not found:
        raise SummaryFailed("the summary is not a JSON object")
    try:
        data = json.loads(found.group(0))
    except ValueError as exc:
        raise SummaryFailed(f"the summary is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SummaryFailed("the summary is not a JSON object")
    return SummaryResult(
        call_summary=_text(data, "call_summary", _MAX_SUMMARY_CHARS),
        caller_summary=_text(data, "caller_summary", _MAX_SUMMARY_CHARS),
        profile=clean_profile(data.get("profile")),
        next_greeting=_text(data, "next_greeting", _MAX_GREETING_CHARS),
    )


class Summariser:
    def __init__(
        self,
        client: AsyncOpenAI,
        counter: TokenCounter,
        *,
        model: str,
        timeout_s: float,
        max_tokens: int,
        transcript_tokens: int,
        json_mode: bool = True,
    ) -> None:
        self._client = client
        self._counter = counter
        self._model = model
        self._timeout_s = timeout_s
        self._max_tokens = max_tokens
        self._transcript_tokens = transcript_tokens
        self._json_mode = json_mode

    def request(self, task: SummaryTask) -> str:
        """The user message: the memory so far and the call, as JSON (the end of a very long call)."""
        lines = [f"{'Caller' if t.role is Role.CALLER else 'Assistant'}: {t.text}" for t in task.turns]
        transcript = self._counter.keep_last("\n".join(lines), self._transcript_tokens)
        return json.dumps(
            {
                "previous_summary": task.summary or "",
                "profile": task.profile,
                "call": {"started_at": task.started_at.isoformat(), "transcript": transcript},
            },
            ensure_ascii=False,
        )

    async def summarise(self, task: SummaryTask) -> SummaryResult:
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if self._json_mode else {}
        try:
            async with asyncio.timeout(self._timeout_s):
                completion = await self._client.chat.completions.create(
                    model=self._model,
                    messages=[
                        {"role": "system", "content": INSTRUCTIONS},
                        {"role": "user", "content": self.request(task)},
                    ],
                    max_tokens=self._max_tokens,
                    temperature=0,
                    **extra,
                )
        except TimeoutError as exc:
            raise SummaryFailed(f"no summary within {self._timeout_s:.1f} s") from exc
        except openai.OpenAIError as exc:
            # Kept on the job and logged: the type and status, not the text, which can echo the prompt.
            raise SummaryFailed(describe_error(exc)) from exc
        content = completion.choices[0].message.content if completion.choices else None
        return parse_result(content or "")
