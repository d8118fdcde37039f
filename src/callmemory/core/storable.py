"""What the stores can hold, checked at the door: the one rule every entry point applies to its input.

Postgres `text` cannot hold NUL, and a lone surrogate (half of a UTF-16 pair, which JSON's `\\ud800`
can spell) cannot be encoded as UTF-8 for Redis or Postgres. Accepted, either one fails every later
attempt to store the call it is part of, so it is refused before anything is stored. Nesting is bounded
too: it costs the parser a stack frame per level, and nothing callmemory reads is more than a few deep.
"""

from __future__ import annotations

import re
from typing import Any, Final

from callmemory.core.errors import UnstorableInput

MAX_DEPTH: Final = 32
# What a turn's text must hold to be recorded: a character that is not whitespace as `str.split()` sees it
# (turns are read with it), spelt out because a schema's `\\S` means a slightly different set.
SPOKEN_PATTERN: Final = (
    "[^\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """What in `text` no store can hold, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    return "a NUL character (U+0000)" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"


def check_text(text: str, field: str | None) -> None:
    """UnstorableInput naming `field` (None: the whole body), unless all of `text` can be stored."""
    problem = text_problem(text)
    if problem is not None:
        raise UnstorableInput(f"{_where(field)} holds {problem}, which cannot be stored", field=field)


def check_document(document: Any) -> None:
    """Every string of a parsed JSON document, keys included, and how deep it nests."""
    _check(document, (), 1)


def too_deep(top_level_key: str | None) -> UnstorableInput:
    """The refusal of a body nested too deep, naming the top-level field it happens under."""
    where = _where(top_level_key)
    return UnstorableInput(f"{where} nests deeper than {MAX_DEPTH} levels", field=top_level_key)


def _where(field: str | None) -> str:
    return f"`{field}`" if field else "the body"


def _check(value: Any, path: tuple[str, ...], depth: int) -> None:
    if isinstance(value, str):
        check_text(value, field_name(path) or None)
        return
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = ((str(index), item) for index, item in enumerate(value))
    else:
        return
    if depth > MAX_DEPTH:
        raise too_deep(field_name(path[:1]) or None)
    for key, item in items:
        inner = (*path, key)
        check_text(key, field_name(inner))
        _check(item, inner, depth + 1)


def field_name(path: tuple[str, ...]) -> str:
    """A JSON path as errors name it (`data.source.target`), unstorable characters escaped, so the error
    that names the field can itself be encoded."""
    return ".".join(_UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", part) for part in path)
