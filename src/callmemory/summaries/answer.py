"""Reading the LLM's answer to a summary request, and naming exactly what was wrong with it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Final

from callmemory.memory.profile import checked_profile
from callmemory.summaries.greeting import prepared_greeting
from callmemory.summaries.queue import SummaryResult

_MAX_SUMMARY_CHARS: Final = 2000
_MAX_GREETING_CHARS: Final = 300
_DECODER: Final = json.JSONDecoder()


class Reason(StrEnum):
    """Why a summary request gave no summary: a metric label, and the first words of the job's error."""

    TIMEOUT = "timeout"
    PROVIDER = "provider"  # an HTTP error or no connection
    TOO_LONG = "too_long"  # the prompt exceeds the model's context
    TRUNCATED = "truncated"  # cut at max_tokens
    NOT_JSON = "not_json"
    MISSING_KEY = "missing_key"
    WRONG_TYPE = "wrong_type"

    @property
    def repeats(self) -> bool:
        """Whether the same request would fail the same way: then it is not sent again unchanged."""
        return self not in (Reason.TIMEOUT, Reason.PROVIDER)


class SummaryFailed(Exception):
    """The LLM gave no usable summary; the message starts with the reason, in words."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value.replace('_', ' ')}: {detail}")
        self.reason = reason


def reason_of(error: str | None) -> Reason | None:
    """The reason a job's stored error starts with; None for another or no error."""
    try:
        return Reason((error or "").split(":", 1)[0].replace(" ", "_"))
    except ValueError:
        return None


_KEYS: Final = ("call_summary", "caller_summary", "profile", "next_greeting")


def first_object(content: str) -> dict[str, Any] | None:
    """The first complete JSON object in `content` that is a summary (has one of its keys), else the
    first at all. Models wrap JSON in prose or code fences: each object is decoded on its own, so a
    second object after the first, or braces in prose before it, are never read as part of it; an
    object inside one that does not decode (the profile of a cut answer) is not taken for it."""
    found: dict[str, Any] | None = None
    failed = False  # after a brace that began no object, an object without our keys may be inside it
    start = content.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(content, start)
        except ValueError:
            failed, end = True, start + 1
        else:
            if isinstance(value, dict):
                if any(key in value for key in _KEYS):
                    return value
                if found is None and not failed:
                    found = value
        start = content.find("{", end)
    return found


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _string(data: dict[str, Any], key: str) -> str:
    if key not in data:
        raise SummaryFailed(Reason.MISSING_KEY, f"the summary has no {key!r}")
    value = data[key]
    if not isinstance(value, str):
        raise SummaryFailed(Reason.WRONG_TYPE, f"{key!r} is {_type_name(value)}, not a string")
    if not value.strip():
        raise SummaryFailed(Reason.MISSING_KEY, f"{key!r} is empty")
    return value


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    return " ".join(_string(data, key).split())[:limit]


def parse_result(
    content: str,
    finish_reason: str | None,
    previous_profile: dict[str, Any],
    caller_said: Sequence[str],
) -> SummaryResult:
    """The summary in the LLM's answer, checked; SummaryFailed names what is wrong with it.

    An answer cut at max_tokens is "truncated" unless a complete object came before the cut. A profile
    left out keeps the previous one: a small model often drops it, and nothing was learnt then. A
    greeting or profile entries unfit to keep (`caller_said`: the caller's turns, which a greeting must
    not read back) are left out, and the rest of the summary is kept: it is still worth having.
    """
    data = first_object(content)
    cut = finish_reason == "length"
    if cut and (data is None or any(key not in data for key in _KEYS if key != "profile")):
        # What parsed, if anything, is a part: the object around it was cut off.
        raise SummaryFailed(
            Reason.TRUNCATED, f"the answer was cut at max_tokens, after {len(content)} characters"
        )
    if data is None:
        raise SummaryFailed(Reason.NOT_JSON, "the answer holds no complete JSON object")
    raw_profile = data.get("profile", previous_profile)
    if not isinstance(raw_profile, dict):
        raise SummaryFailed(Reason.WRONG_TYPE, f"'profile' is {_type_name(raw_profile)}, not an object")
    call_summary = _text(data, "call_summary", _MAX_SUMMARY_CHARS)
    caller_summary = _text(data, "caller_summary", _MAX_SUMMARY_CHARS)
    profile, refused_entries = checked_profile(raw_profile)
    greeting = prepared_greeting(
        _string(data, "next_greeting"),
        caller_said=caller_said,
        name=profile.get("name"),
        max_chars=_MAX_GREETING_CHARS,
    )
    return SummaryResult(
        call_summary=call_summary,
        caller_summary=caller_summary,
        profile=profile,
        next_greeting=greeting.text,
        refused_greeting=greeting.refused,
        refused_entries=refused_entries,
    )
