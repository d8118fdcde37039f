"""How a summary's structure is asked for: the strongest `response_format` the provider accepts.

From strongest to weakest:
- `json_schema` (strict): OpenAI, vLLM, Ollama (0.5+) and llama.cpp's own server constrain decoding to
  the schema, so the answer has the keys and types asked for;
- `json_object` with a `schema` beside the type: llama-cpp-python's server, which refuses `json_schema`
  (its request model knows only "text" and "json_object", and answers 500 naming response_format),
  turns this schema into a grammar; here string lengths are bounded too, so that a small model cannot
  ramble until max_tokens;
- `json_object`: any JSON object;
- none: the instructions alone.

A provider that refuses one is asked with the next, from then on: `Formats` remembers it for the process.
"""

from __future__ import annotations

import logging
from enum import IntEnum
from typing import Any, Final

import openai

from callmemory.memory.profile import PROFILE

log = logging.getLogger(__name__)


class Format(IntEnum):
    """Ordered: a higher value constrains less."""

    JSON_SCHEMA = 0
    JSON_OBJECT_SCHEMA = 1
    JSON_OBJECT = 2
    TEXT = 3

    @classmethod
    def named(cls, name: str) -> Format:
        """The setting's word for the strongest format to try."""
        return {"json_schema": cls.JSON_SCHEMA, "json_object": cls.JSON_OBJECT, "text": cls.TEXT}[name]


# Bounds of the grammar llama-cpp-python builds (json_object with a schema): about what the instructions
# ask for, in characters, so that the longest answer fits the default max_tokens.
_LENGTHS: Final = {"call_summary": 400, "caller_summary": 800, "next_greeting": 240}
_ITEM_CHARS: Final = 120
_ITEMS: Final = 5
_NAME_CHARS: Final = 80


def _schema(bounded: bool) -> dict[str, Any]:
    """The summary's JSON schema, from the profile spec. Strict mode's rules: every key required, no other
    key allowed; a field with nothing to say is null or an empty list."""

    def text(limit: int) -> dict[str, Any]:
        return {"type": "string", "maxLength": limit} if bounded else {"type": "string"}

    fields: dict[str, Any] = {}
    for field in PROFILE:
        if field.many:
            items = {"type": "array", "items": text(_ITEM_CHARS)}
            fields[field.key] = {**items, "maxItems": _ITEMS} if bounded else items
        else:
            fields[field.key] = {
                "type": ["string", "null"],
                **({"maxLength": _NAME_CHARS} if bounded else {}),
            }
    profile = {
        "type": "object",
        "properties": fields,
        "required": list(fields),
        "additionalProperties": False,
    }
    properties = {
        "call_summary": text(_LENGTHS["call_summary"]),
        "caller_summary": text(_LENGTHS["caller_summary"]),
        "profile": profile,
        "next_greeting": text(_LENGTHS["next_greeting"]),
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


SCHEMA: Final = _schema(bounded=False)
BOUNDED_SCHEMA: Final = _schema(bounded=True)


def response_format(fmt: Format) -> dict[str, Any] | None:
    """The request's `response_format` in this form; None: not sent."""
    match fmt:
        case Format.JSON_SCHEMA:
            return {
                "type": "json_schema",
                "json_schema": {"name": "caller_memory", "strict": True, "schema": SCHEMA},
            }
        case Format.JSON_OBJECT_SCHEMA:
            return {"type": "json_object", "schema": BOUNDED_SCHEMA}
        case Format.JSON_OBJECT:
            return {"type": "json_object"}
        case Format.TEXT:
            return None


def refused_format(exc: openai.APIStatusError) -> bool:
    """Whether the provider refused the request's response_format, rather than the request itself.

    The refusals differ: OpenAI answers 400 with `param: response_format`, vLLM 400 naming the schema,
    llama-cpp-python 500 with its request model's validation error quoted (it wraps every error of a
    route, validation included, as an internal error). What they share is naming response_format (or
    the json_schema type): a request refused for another reason is not stepped down for.
    """
    if exc.status_code not in (400, 422, 500):
        return False
    said = f"{exc.message} {exc.body}".lower()
    return "response_format" in said or "json_schema" in said


class Formats:
    """The strongest format the provider has not refused; one per process, stepped down at most 3 times."""

    def __init__(self, strongest: Format) -> None:
        self.current = strongest

    def refused(self, fmt: Format) -> bool:
        """`fmt` was refused: step down past it. False when there is nothing weaker to ask with."""
        if fmt is Format.TEXT:
            return False
        if fmt >= self.current:  # another request stepped down already
            self.current = Format(fmt + 1)
            log.warning(
                "the summary endpoint refused response_format %s: asking with %s from now on",
                fmt.name.lower(),
                self.current.name.lower(),
            )
        return True
