"""Logs: readable lines on a terminal, one JSON object per line elsewhere, and nothing in them that
identifies a caller.

Privacy is kept first by what the code logs (call ids and caller-hash prefixes, never numbers or
speech; exceptions described by `describe_error`, not by their text), and second by this module:
- library loggers that log request bodies, URLs or SQL parameters are held at WARNING;
- uvicorn's access log has the secret token and the numbers cut out of VoIPBin fetch paths, and the
  caller's number out of integrator API paths;
- the formatter masks anything shaped like a phone number that still reaches a line, and writes
  exceptions as their types and stack frames, without their messages (which can quote SQL parameters
  or a provider's echo of the prompt).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Final

from callmemory.observability import context

# Their DEBUG/INFO lines carry payloads: openai logs request options (the prompt), httpx/httpcore and
# aiohttp log URLs, sqlalchemy.engine logs statements with their parameters (transcripts).
# (The openai SDK 3.x sends through httpx2/httpcore2.)
QUIET_LIBRARIES: Final = (
    *("openai", "httpx", "httpx2", "httpcore", "httpcore2", "aiohttp"),
    *("sqlalchemy", "asyncpg", "redis", "hpack"),
)

# token / bot number / caller number: all three go (the bot's number would be masked as a number anyway).
_FETCH_PATH = re.compile(r"^(/voipbin/fetch)/[^/?#]*/[^/?#]*/[^/?#]*")
_API_CALLER = re.compile(r"^(/v1/bots/[^/?#]*/callers/)[^/?#]*")
# E.164 (+ and 7-15 digits), bare national or international digit runs, and the usual written forms
# like (415) 555-1234 or 415.555.1234; bounded so that uuids and timestamps are left alone.
_PHONE_LIKE = re.compile(
    r"(?<![\w-])(?:\+\d{7,15}|\d{10,15}|\+?\d{0,3}[ .-]?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})(?![\w-])"
)
_MASK: Final = "[number]"


def redact_path(path: str) -> str:
    """A request path as it may be logged: the fetch URL's token and numbers, and the integrator API's
    caller number (URL-encoded, %2B..., so the number mask would miss it), replaced."""
    return _API_CALLER.sub(r"\1***", _FETCH_PATH.sub(r"\1/***/***/***", path))


def mask_numbers(text: str) -> str:
    return _PHONE_LIKE.sub(_MASK, text)


def describe_error(exc: BaseException) -> str:
    """An exception as it may be logged: its type and what kind of failure, never its free text.

    A database error's text quotes the statement's parameters (turn text, numbers) and an LLM
    provider's error can echo the prompt, so only types, HTTP statuses and connection errors (which
    name a host, not a caller) are shown.
    """
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return f"{name} (HTTP {status})"
    orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper around the driver's error
    if isinstance(orig, BaseException):
        return f"{name} ({type(orig).__name__})"
    if isinstance(exc, OSError) or name in {"ConnectionError", "TimeoutError"}:  # redis-py's own
        return mask_numbers(f"{name}: {exc}")
    return name


class AccessPathFilter(logging.Filter):
    """On uvicorn.access: its records carry (client, method, path, http version, status) as args."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_path(args[2]), args[3], args[4])
        return True


def resolved_format(fmt: str, stream: Any = "ext://sys.stderr") -> str:
    """ "json" or "text": "auto" is text on a terminal (a person reads it) and JSON anywhere else."""
    if fmt != "auto":
        return fmt
    target = sys.stderr if stream == "ext://sys.stderr" else stream
    isatty = getattr(target, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, the request/call/caller ids known, and an exception's shape."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_numbers(record.getMessage()),
            **context.current(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = _exception_types(record.exc_info[1])
            line["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(line, ensure_ascii=False, default=str)


def _exception_types(exc: BaseException) -> str:
    """The chain of exception types, outermost last, as Python prints them, without their messages."""
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(describe_error(seen))
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(chain)


class TextFormatter(logging.Formatter):
    """The human-readable lines (on a terminal, or CALLMEMORY_LOG_FORMAT=text), under the same privacy
    rules."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # Not the traceback text another handler may have cached on the record: it has the messages.
        record = logging.makeLogRecord({**record.__dict__, "exc_text": None})
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in context.current().items())
        return mask_numbers(super().formatMessage(record) + (f" [{ids}]" if ids else ""))

    def formatException(self, ei: Any) -> str:
        return f"{_exception_types(ei[1])}\n" + "".join(traceback.format_tb(ei[2]))


def log_config(level: str, *, fmt: str = "auto", stream: Any = "ext://sys.stderr") -> dict[str, Any]:
    """The dictConfig `serve` hands to uvicorn (workers apply it too); `stream` is for tests.

    `fmt` "auto" is decided here, in the process that owns the terminal, so that workers (whose stderr
    is the same) log in the same format.
    """
    level = level.upper()
    formatter = JsonFormatter if resolved_format(fmt, stream) == "json" else TextFormatter
    own = {"handlers": ["default"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{__name__}.{formatter.__name__}"}},
        "filters": {"access_paths": {"()": f"{__name__}.AccessPathFilter"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default", "stream": stream}},
        "loggers": {
            "callmemory": own,
            "uvicorn": own,
            "uvicorn.error": {"level": level},
            "uvicorn.access": {**own, "filters": ["access_paths"]},
            # Pinned whatever the level: see QUIET_LIBRARIES.
            **{name: {"level": "WARNING"} for name in QUIET_LIBRARIES},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
