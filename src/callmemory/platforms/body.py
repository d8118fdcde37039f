"""The one thing every wire format starts with: a request body that must be JSON, and storable."""

from __future__ import annotations

import json
import re
from typing import Any

from callmemory.core.errors import MalformedBody
from callmemory.core.storable import MAX_DEPTH, check_document, field_name, too_deep

# A JSON string or a bracket: enough to find which top-level member a too deep body nests under.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_document(body: bytes) -> Any:
    """The body parsed as JSON, or MalformedBody (400) saying why not; UnstorableInput (422) naming the
    field when a string holds what no store can, or the document nests too deep (see `storable`)."""
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # nested so deep that the parser gave up: far past the limit
        raise too_deep(_member_nesting_deepest(body)) from exc
    if _may_be_unstorable(body):
        check_document(document)
    return document


def json_object(body: bytes) -> dict[str, Any]:
    """The body parsed as a JSON object (see `json_document`), or MalformedBody (400)."""
    document = json_document(body)
    if not isinstance(document, dict):
        raise MalformedBody("the body must be a JSON object")
    return document


def _may_be_unstorable(body: bytes) -> bool:
    """False when the raw bytes show that the document is storable: walking it costs a webhook several
    times what parsing it does. In UTF-8 JSON, NUL and surrogates can only be spelt `\\u...` or (lone
    surrogates) as raw bytes starting 0xED; a body in UTF-16 or UTF-32 has zero bytes."""
    return (
        b"\\u" in body
        or b"\xed" in body
        or b"\x00" in body
        or body.count(b"{") + body.count(b"[") > MAX_DEPTH
    )


def _member_nesting_deepest(body: bytes) -> str | None:
    """The key of the top-level member under which the body nests deepest (None: not an object)."""
    depth = deepest = 0
    key: str | None = None
    found: str | None = None
    for token in _TOKEN.finditer(body.decode("utf-8", "replace")):
        text = token.group()
        if text[0] == '"':
            if depth == 1:  # in a top-level object a member's key is the last string before its value
                key = text
        else:
            depth += 1 if text in "[{" else -1
            if depth > deepest:
                deepest, found = depth, key
    if found is None or body.lstrip()[:1] != b"{":
        return None
    return field_name((json.loads(found),))
