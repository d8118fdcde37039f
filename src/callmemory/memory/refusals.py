"""Telling "Postgres refuses this call" from "Postgres is not there".

An outage (refused or lost connections, a deadline passed) is retried for as long as it lasts, and
makes the flusher wait. A refusal is about one call's own data (a NUL character in a turn, a value no
column can hold): retrying it cannot help, and waiting on it would hold back every call behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncpg.exceptions import _base as asyncpg_base
from sqlalchemy.exc import DBAPIError, StatementError

# SQLSTATE classes about the statement's data, not about the server: 22 data exception, 23 integrity
# constraint violation. Anything else (a connection, a resource, a missing function after a bad
# migration) would fail every call alike, so it is treated as an outage.
_REFUSING_CLASSES = frozenset({"22", "23"})
_LONGEST_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # the error's type and SQLSTATE: what the logs say
    message: str  # Postgres' message, which may quote a value: kept with the call, never logged

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind


def refusal_reason(exc: BaseException) -> Refusal | None:
    """Why Postgres refused the call, if it did; None when the failure is an outage.

    Never the statement's parameters (which hold what the caller said): the error's type, SQLSTATE and
    the first line of Postgres' message.
    """
    if isinstance(exc, DBAPIError):
        cause = exc.orig.__cause__ if exc.orig is not None else None
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _REFUSING_CLASSES:
            return _reason(type(cause or exc.orig).__name__, sqlstate, str(cause or exc.orig))
        if isinstance(cause, asyncpg_base.DataError):
            # asyncpg could not encode a parameter (e.g. a lone surrogate); its message goes on to
            # quote the value, so only its first clause is kept.
            return _reason(type(cause).__name__, None, str(cause).split(":", 1)[0])
        return None
    if isinstance(exc, StatementError):
        # Failed while SQLAlchemy prepared this call's values, before anything reached Postgres.
        return _reason(type(exc.orig).__name__ if exc.orig else type(exc).__name__, None, "")
    return None


def _reason(kind: str, sqlstate: str | None, message: str) -> Refusal:
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return Refusal(kind=f"{kind} [{sqlstate}]" if sqlstate else kind, message=first_line[:_LONGEST_MESSAGE])
