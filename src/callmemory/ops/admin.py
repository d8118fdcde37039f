"""The operator's data commands: `forget` a caller, `export` a caller's (or a bot's) data, `stats`,
`quarantine list|export|retry` for calls Postgres refused, and `summaries status|requeue` for summary jobs.

They open the same services `serve` does (without its background tasks) and go through the same
records, eraser and memory classes as the integrator API, so a CLI erasure is exactly an API erasure.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from callmemory.api.integrator.schemas import ErasureReceiptOut, Export
from callmemory.core.errors import CallMemoryError
from callmemory.db.session import create_sessionmaker
from callmemory.memory.hot.client import HOT_STORE_ERRORS
from callmemory.memory.hot.store import QuarantinedCall
from callmemory.memory.types import LiveCall
from callmemory.services import Services, open_services
from callmemory.settings import Settings
from callmemory.summaries.queue import SummaryQueue


class AdminError(RuntimeError):
    """A command failed for a reason the operator can act on; `exit_status` says which kind."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


_ANY_STORE_ERROR: tuple[type[Exception], ...] = (SQLAlchemyError, *HOT_STORE_ERRORS)
BAD_INPUT = 2
NOT_FOUND = 3
UNAVAILABLE = 4


@asynccontextmanager
async def admin_services(settings: Settings) -> AsyncIterator[Services]:
    """`open_services` for one command: no flusher, sweeper or summary worker; store errors explained."""
    if not settings.database_url or not settings.redis_url:
        raise AdminError("set DATABASE_URL and REDIS_URL (as for `callmemory serve`)", BAD_INPUT)
    quiet = settings.model_copy(update={"background_tasks": False, "summary_worker": False})
    # No LLM is used here, so services' warning that none is configured would only mislead.
    logging.getLogger("callmemory.services").setLevel(logging.ERROR)
    try:
        async with open_services(quiet) as services:
            yield services
    except CallMemoryError as exc:  # a bad number, or StoreUnavailable from the eraser
        raise AdminError(exc.message, BAD_INPUT if exc.status < 500 else UNAVAILABLE) from exc
    except _ANY_STORE_ERROR as exc:
        raise AdminError(f"a store is unreachable: {exc}", UNAVAILABLE) from exc


async def forget(settings: Settings, bot: str, caller: str) -> dict[str, Any]:
    """Erase the caller everywhere; the receipt, as the API's DELETE answers it."""
    async with admin_services(settings) as services:
        receipt = await services.eraser.erase(services.memory.address(bot, caller))
        return ErasureReceiptOut.of(caller, receipt).model_dump(mode="json")


async def export_caller(settings: Settings, bot: str, caller: str) -> dict[str, Any]:
    """Everything the archive holds about the caller, as the API's export answers it."""
    async with admin_services(settings) as services:
        caller_id = services.memory.address(bot, caller)
        data = await services.records.export(caller_id)
        if data is None:
            raise AdminError(f"no caller {caller} of bot {bot} in the archive", NOT_FOUND)
        return Export.of(caller_id.bot_number, caller, data).model_dump(mode="json")


class Progress:
    """A dependency-free progress bar on a terminal; on anything else, one line at the end."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self._total = total
        self._label = label
        self._stream = stream
        self._width = width
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._drawn = 0.0

    def advance(self, done: int) -> None:
        now = time.monotonic()
        if not self._tty or (done < self._total and now - self._drawn < 0.1):
            return  # redrawing every item would cost more than exporting it
        self._drawn = now
        filled = self._width * done // max(self._total, 1)
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{self._total}")
        self._stream.flush()

    def finish(self, summary: str) -> None:
        if self._tty:
            self._stream.write("\n")
        self._stream.write(f"{summary} in {time.monotonic() - self._started:.1f} s\n")
        self._stream.flush()


async def export_many(settings: Settings, bot: str | None, out: TextIO, progress: TextIO) -> int:
    """Every archived caller of `bot` (or of every bot) as one JSON document, streamed one caller at a
    time so that memory stays flat; returns how many callers were written."""
    async with admin_services(settings) as services:
        bot_e164 = services.memory.bot_number(bot) if bot else None
        callers = await services.records.callers(bot_e164)
        bar = Progress(len(callers), "exporting callers", progress)
        out.write(json.dumps({"bot_number": bot_e164})[:-1] + ', "callers": [')
        written = 0
        for caller_id, number in callers:
            data = await services.records.export(caller_id)
            if data is None:
                continue  # erased since the listing
            entry = Export.of(caller_id.bot_number, number or "", data).model_dump(mode="json")
            # Numbers are kept only with CALLMEMORY_STORE_RAW_NUMBERS; the hash always names the caller.
            entry["caller"].update(caller_number=number, caller_hash=caller_id.caller_hash)
            out.write(("\n" if written == 0 else ",\n") + json.dumps(entry))
            written += 1
            bar.advance(written)
        out.write("\n]}\n")
        bar.finish(f"exported {written} caller(s)")
        return written


async def stats(settings: Settings, bot: str | None) -> dict[str, Any]:
    """Callers, calls and turns in the archive; ended calls waiting in Redis for it."""
    async with admin_services(settings) as services:
        bot_e164 = services.memory.bot_number(bot) if bot else None
        totals = await services.records.totals(bot_e164)
        pending = await services.memory.pending_archives()
        quarantined = await services.memory.quarantined_archives()
        if pending is None or quarantined is None:
            raise AdminError("Redis is unreachable: cannot count pending archives", UNAVAILABLE)
        return {
            "bot_number": bot_e164,
            "callers": totals.callers,
            "calls": totals.calls,
            "turns": totals.turns,
            "pending_archives": pending,  # all bots': the pending list does not say whose calls they are
            "quarantined_archives": quarantined,
        }


def _quarantined(entry: QuarantinedCall, live: LiveCall | None) -> dict[str, Any]:
    return {
        "platform": entry.call.platform,
        "call_id": entry.call.call_id,
        "bot_number": entry.caller.bot_number,
        "caller_hash": entry.caller.caller_hash,
        "reason": entry.reason,
        "quarantined_at": entry.since.isoformat(),
        "refusals": entry.refusals,
        "turns": len(live.transcript) if live is not None else None,
    }


def _chosen(
    found: list[tuple[QuarantinedCall, LiveCall | None]], call_id: str | None
) -> list[tuple[QuarantinedCall, LiveCall | None]]:
    chosen = [(e, live) for e, live in found if call_id is None or e.call.call_id == call_id]
    if call_id is not None and not chosen:
        raise AdminError(f"no quarantined call {call_id!r}", NOT_FOUND)
    return chosen


async def quarantine_list(settings: Settings) -> list[dict[str, Any]]:
    """The calls Postgres refused too often, with the reason; no turn's text."""
    async with admin_services(settings) as services:
        return [_quarantined(entry, live) for entry, live in await services.memory.quarantined()]


async def quarantine_export(settings: Settings, call_id: str | None) -> dict[str, Any]:
    """Quarantined calls whole, transcript included: for a look at what Postgres refused, or to archive
    them by other means."""
    async with admin_services(settings) as services:
        calls = []
        for entry, live in _chosen(await services.memory.quarantined(), call_id):
            exported = _quarantined(entry, live)
            if live is not None:
                exported.update(
                    started_at=live.started_at.isoformat(),
                    ended_at=live.ended_at.isoformat() if live.ended_at else None,
                    end_reason=live.end_reason,
                    summary=live.summary,
                    transcript=[
                        {
                            "seq": t.seq,
                            "role": str(t.role),
                            "text": t.text,
                            "at": t.at.isoformat(),
                            "fallback": t.fallback,
                        }
                        for t in live.transcript
                    ],
                )
            calls.append(exported)
        return {"calls": calls}


async def quarantine_retry(settings: Settings, call_id: str | None) -> list[dict[str, Any]]:
    """Archive quarantined calls now (all, or the one named). Each one refused again goes back to the
    flusher with its full number of tries; the outcome of each: archived, already_archived, refused,
    unreachable (Postgres down: the flusher goes on), or lost (its state was gone)."""
    async with admin_services(settings) as services:
        outcomes = []
        for entry, _ in _chosen(await services.memory.quarantined(), call_id):
            attempt = await services.memory.retry_quarantined(entry)
            outcomes.append(
                {
                    "platform": entry.call.platform,
                    "call_id": entry.call.call_id,
                    "outcome": str(attempt) if attempt is not None else "lost",
                }
            )
        return outcomes


async def summaries_status(settings: Settings) -> dict[str, Any]:
    """Summary jobs due, waiting for a retry, and degraded (summarised from the transcript), by reason."""
    async with admin_services(settings) as services:
        counts = await SummaryQueue(create_sessionmaker(services.engine)).counts()
        return {
            "due": counts.due,
            "waiting": counts.waiting,
            "degraded": sum(counts.degraded.values()),
            "degraded_by_reason": dict(sorted(counts.degraded.items())),
        }


async def summaries_requeue(
    settings: Settings, *, degraded_only: bool, bot: str | None, caller: str | None
) -> dict[str, Any]:
    """Make summary jobs due now with their tries counted afresh: the degraded ones (their summary made
    from the transcript) or all, of every caller or one. A summary the LLM then gives replaces the
    fallback's."""
    async with admin_services(settings) as services:
        caller_id = services.memory.address(bot, caller) if bot and caller else None
        queue = SummaryQueue(create_sessionmaker(services.engine))
        return {"requeued": await queue.requeue(degraded_only=degraded_only, caller=caller_id)}
