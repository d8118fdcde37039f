"""After a call: one LLM request that summarises it, folds it into the caller's rolling summary and
profile, and prepares the greeting for their next call.

Runs in the background worker, never while a caller waits, with its own endpoint, time limit and token
budget; a failure raises SummaryFailed naming its reason, and the worker decides what to try next
(worker.py): a changed request, a later retry, or the summary made from the transcript (fallback.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from dataclasses import dataclass, replace
from typing import Final

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from callmemory.conversation.tokens import TokenCounter
from callmemory.core.events import Role
from callmemory.memory.profile import PROFILE, ProfileField
from callmemory.observability.logs import describe_error
from callmemory.summaries.answer import Reason, SummaryFailed, parse_result, reason_of
from callmemory.summaries.formats import Format, Formats, refused_format, response_format
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

log = logging.getLogger(__name__)

_MAX_TOKENS_GROWTH: Final = 4  # max_tokens is doubled at most twice
_SHORTEST_TRANSCRIPT: Final = 100  # tokens: below this a call is not cut any shorter


@dataclass(frozen=True, slots=True)
class Plan:
    """What one summary request may use. A retry after an answer that the same request would give again
    changes it: more tokens after a cut answer, less transcript after a wrong one."""

    max_tokens: int
    transcript_tokens: int


def _context_exceeded(exc: openai.APIStatusError) -> bool:
    said = f"{exc.message} {exc.body}".lower()
    return exc.status_code == 400 and ("context" in said or "too long" in said)


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
        formats: Formats | None = None,
    ) -> None:
        self._client = client
        self._counter = counter
        self._model = model
        self._timeout_s = timeout_s
        self._base = Plan(max_tokens=max_tokens, transcript_tokens=transcript_tokens)
        self.formats = formats or Formats(Format.JSON_SCHEMA)

    def first_plan(self, task: SummaryTask) -> Plan:
        """The plan of a job's first request in this claim: after a timeout, less transcript."""
        if reason_of(task.last_error) is Reason.TIMEOUT:
            return self._shorter(task, self._base, _SHORTEST_TRANSCRIPT) or self._base
        return self._base

    def next_plan(self, task: SummaryTask, plan: Plan, reason: Reason) -> Plan | None:
        """A plan that may fix what `reason` says went wrong; None when nothing is left to change."""
        if reason is Reason.TRUNCATED and plan.max_tokens < self._base.max_tokens * _MAX_TOKENS_GROWTH:
            return replace(plan, max_tokens=plan.max_tokens * 2)
        # A prompt too long for the model is cut as far as it takes; a wrong answer only twice, as
        # the summary of half a call is still worth more than none.
        floor = _SHORTEST_TRANSCRIPT if reason is Reason.TOO_LONG else self._base.transcript_tokens // 4
        return self._shorter(task, plan, floor)

    def _shorter(self, task: SummaryTask, plan: Plan, floor: int) -> Plan | None:
        sent = min(plan.transcript_tokens, self._counter.count(self._transcript(task)))
        half = sent // 2
        if half < max(floor, _SHORTEST_TRANSCRIPT):
            return None
        return replace(plan, transcript_tokens=half)

    @staticmethod
    def _transcript(task: SummaryTask) -> str:
        return "\n".join(
            f"{'Caller' if t.role is Role.CALLER else 'Assistant'}: {t.text}" for t in task.turns
        )

    def request(self, task: SummaryTask, plan: Plan | None = None) -> str:
        """The user message: the memory so far and the call, as JSON (the end of a very long call)."""
        limit = (plan or self._base).transcript_tokens
        transcript = self._counter.keep_last(self._transcript(task), limit)
        return json.dumps(
            {
                "previous_summary": task.summary or "",
                "profile": task.profile,
                "call": {"started_at": task.started_at.isoformat(), "transcript": transcript},
            },
            ensure_ascii=False,
        )

    async def summarise(self, task: SummaryTask, plan: Plan | None = None) -> SummaryResult:
        """One summary, asked for in the strongest format the provider accepts; SummaryFailed says why
        there is none."""
        plan = plan or self._base
        content = self.request(task, plan)
        try:
            async with asyncio.timeout(self._timeout_s):
                completion = await self._ask(content, plan)
        except TimeoutError as exc:
            raise SummaryFailed(Reason.TIMEOUT, f"no summary within {self._timeout_s:.1f} s") from exc
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content if choice else None) or ""
        said = [t.text for t in task.turns if t.role is Role.CALLER]
        return parse_result(text, choice.finish_reason if choice else None, task.profile, said)

    async def _ask(self, content: str, plan: Plan) -> ChatCompletion:
        while True:
            fmt = self.formats.current
            shape = response_format(fmt)
            try:
                return await self._client.chat.completions.create(
                    model=self._model,
                    messages=[
                        {"role": "system", "content": INSTRUCTIONS},
                        {"role": "user", "content": content},
                    ],
                    max_tokens=plan.max_tokens,
                    temperature=0,
                    # Sent as it is: the SDK's types know json_object without llama-cpp-python's schema.
                    extra_body={"response_format": shape} if shape else None,
                    # The client's own limit may be another's (the live answers', seconds); this is ours.
                    timeout=self._timeout_s,
                )
            except openai.APITimeoutError as exc:
                raise SummaryFailed(Reason.TIMEOUT, f"no summary within {self._timeout_s:.1f} s") from exc
            except openai.APIStatusError as exc:
                if refused_format(exc) and self.formats.refused(fmt):
                    continue
                if _context_exceeded(exc):
                    raise SummaryFailed(
                        Reason.TOO_LONG, f"the prompt exceeds the model's context ({describe_error(exc)})"
                    ) from exc
                # Kept on the job and logged: the type and status, not the text, which can echo the prompt.
                raise SummaryFailed(Reason.PROVIDER, describe_error(exc)) from exc
            except openai.OpenAIError as exc:
                raise SummaryFailed(Reason.PROVIDER, describe_error(exc)) from exc
