"""The one thing every wire format starts with: a request body that must be a JSON object."""

from __future__ import annotations

import json
from typing import Any

from callmemory.errors import MalformedBody


def json_object(body: bytes) -> dict[str, Any]:
    """The body parsed as a JSON object, or MalformedBody (400) saying why not."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return data
