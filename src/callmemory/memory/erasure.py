"""Erasing a caller: Postgres rows and Redis keys, summaries and profile included, with a tombstone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from callmemory.core.errors import StoreUnavailable
from callmemory.core.identity import CallerId
from callmemory.memory.hot.client import HOT_STORE_ERRORS
from callmemory.memory.hot.store import HotErasure, HotStore
from callmemory.memory.records import CallerRecords, ErasedRows
from callmemory.memory.types import utcnow
from callmemory.observability.logs import describe_error

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    caller: CallerId
    erased_at: datetime
    rows: ErasedRows
    hot: HotErasure


class Eraser:
    def __init__(self, hot: HotStore, records: CallerRecords, clock: Callable[[], datetime] = utcnow) -> None:
        self._hot = hot
        self._records = records
        self._now = clock

    async def erase(self, caller: CallerId) -> ErasureReceipt:
        """Postgres first, then Redis; repeating it after a failure finishes the job.

        Postgres first: its tombstone makes a hangup still in flight refuse to archive the call, and the
        Redis tombstone written with the deletion stops a read of the archive that began before the
        erasure from writing the old memory back into Redis.
        """
        erased_at = self._now()
        try:
            rows, archived_calls = await self._records.erase(caller, erased_at)
        except (SQLAlchemyError, OSError) as exc:
            log.error(
                "erasing caller %s failed in Postgres: %s", caller.caller_hash[:12], describe_error(exc)
            )
            raise StoreUnavailable("the archive is unavailable; nothing was erased, retry") from exc
        try:
            hot = await self._hot.erase(caller, erased_at, archived_calls)
        except HOT_STORE_ERRORS as exc:
            log.error("erasing caller %s failed in Redis: %s", caller.caller_hash[:12], describe_error(exc))
            raise StoreUnavailable(
                "hot memory is unavailable; the archive is erased, retry to finish"
            ) from exc
        log.info(
            "erased caller %s: %d calls, %d turns, %d keys",
            caller.caller_hash[:12],
            rows.calls,
            rows.turns,
            hot.keys,
        )
        return ErasureReceipt(caller=caller, erased_at=erased_at, rows=rows, hot=hot)
