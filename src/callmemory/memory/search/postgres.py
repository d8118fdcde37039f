"""Postgres full-text search of one caller's archive: their turns and call summaries, ranked.

The words of every archived turn and call summary are kept in a `tsvector` by triggers (migration
0005), and each word hashed with the caller's id in `search_keys`, whose GIN index has one short posting
list per caller and word (migration 0006): a search reads that caller's entries with that word and no
one else's, without intersecting a word's entries across the archive with the caller's. What the
caller just said becomes an OR of its words (stemmed and without stop words by the same
configuration): a question asked "in other words" shares few of them with the sentence that holds the
answer, and every shared word counts in the rank.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from callmemory.core.events import Role
from callmemory.core.identity import CallerId
from callmemory.core.trust import DisclosurePolicy
from callmemory.db.deadline import within
from callmemory.memory.types import Found
from callmemory.observability.logs import describe_error

log = logging.getLogger(__name__)

_PER_WORD = 50
_COMMON = 0.01
_COMMON_REFRESH_S = 600.0

# Each word of what was said is looked up on its own, in that caller's part of the index, and counts
# for an entry as 1 / (how many of the caller's entries have it): a word in every call ("reference",
# "number") adds little, the one word that names the topic ("dishwasher") decides. The count is capped
# by reading at most :per_word entries per word, which bounds the work for a caller with thousands of
# calls; an entry missed that way had only common words. Summaries are entries with seq 0. At equal
# rank the caller's own words come first: the bot's turns and the summaries only repeat them. Under a
# bot's `verified` disclosure only verified calls' entries count (core/trust.py), before any ranking.
# Words in more than _COMMON of all archived turns (from the planner's statistics, see _COMMON_WORDS)
# are left out unless the text has no other: they would add next to nothing to a rank, and each would
# cost a read of a posting list as long as the caller's archive. The row's caller and words are checked
# again beside the key, since a hash collision must never show another caller's turn; `IS TRUE` keeps
# the planner from walking a frequent caller's calls by ix_calls_caller_id_started_at instead of the key.
_SEARCH = text(
    """
WITH who AS (
    SELECT id FROM callers WHERE bot_number = :bot_number AND caller_hash = :caller_hash
), said AS (
    SELECT word FROM unnest(tsvector_to_array(to_tsvector(CAST(:config AS regconfig), :said))) AS word
), words AS (
    SELECT quote_literal(word)::tsquery AS q, hashtextextended(word, who.id) AS key, who.id AS caller
      FROM said, who
     WHERE word <> ALL(CAST(:common AS text[]))
        OR NOT EXISTS (SELECT FROM said WHERE word <> ALL(CAST(:common AS text[])))
), matches AS (
    SELECT w.q, m.call_id, m.seq
      FROM words w CROSS JOIN LATERAL (
            (SELECT t.call_id, t.seq FROM turns t
              WHERE t.search_keys @> ARRAY[w.key] AND (t.caller_id = w.caller) IS TRUE AND t.search @@ w.q
              LIMIT :per_word)
            UNION ALL
            (SELECT c.id, 0 FROM calls c
              WHERE c.search_keys @> ARRAY[w.key] AND (c.caller_id = w.caller) IS TRUE AND c.search @@ w.q
              LIMIT :per_word)
           ) m
), disclosed AS (
    SELECT m.q, m.call_id, m.seq FROM matches m JOIN calls v ON v.id = m.call_id
     WHERE v.caller_verified OR NOT :verified_only
), scored AS (
    SELECT call_id, seq, sum(1.0 / n)::float8 AS rank
      FROM disclosed JOIN (SELECT q, count(*) AS n FROM disclosed GROUP BY q) df USING (q)
     GROUP BY call_id, seq
     ORDER BY rank DESC LIMIT :candidates
)
SELECT c.external_id, c.started_at, nullif(s.seq, 0) AS seq, t.role, coalesce(t.text, c.summary) AS text,
       s.rank
  FROM scored s JOIN calls c ON c.id = s.call_id
  LEFT JOIN turns t ON t.call_id = s.call_id AND t.seq = s.seq
 ORDER BY s.rank DESC, t.role IS DISTINCT FROM 'caller', c.started_at DESC, s.seq
"""
)

# ANALYZE (autovacuum's) keeps a tsvector column's most common words with the share of rows holding
# each; the trailing frequencies without a word are the statistics' own.
_COMMON_WORDS = text(
    "SELECT e.word FROM pg_stats s, "
    "unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e(word, freq) "
    "WHERE s.schemaname = current_schema() AND s.tablename = 'turns' AND s.attname = 'search' "
    "AND e.word IS NOT NULL AND e.freq > :share"
)

_SET_CONFIG = text(
    "UPDATE search_config SET config = CAST(:config AS regconfig) "
    "WHERE config <> CAST(:config AS regconfig) RETURNING config"
)


class Searcher(Protocol):
    mode: str  # what the start-up log says

    async def find(self, caller: CallerId, said: str) -> tuple[Found, ...]:
        """The best matches for `said` in the caller's archive; () when there are none or the search
        could not be made in time. Never raises for an unavailable store."""
        ...

    async def search(self, caller: CallerId, said: str, limit: int) -> tuple[Found, ...]:
        """Like find, at most `limit`, but an unavailable store raises (SQLAlchemyError, OSError)."""
        ...


class NoSearch:
    mode = "off"

    async def find(self, caller: CallerId, said: str) -> tuple[Found, ...]:
        return ()

    async def search(self, caller: CallerId, said: str, limit: int) -> tuple[Found, ...]:
        return ()


_ROLES = {role.value: role for role in Role}


def _found(row: Any) -> Found:
    # By position, not by name: a Row's attribute look-ups cost more than the query's own decoding here.
    external_id, started_at, seq, role, said, rank = row
    return Found(
        call_id=external_id,
        call_started_at=started_at,
        text=said,
        rank=rank,
        seq=seq,
        role=_ROLES.get(role),
    )


def _distinct(found: list[Found], limit: int) -> tuple[Found, ...]:
    """The best `limit` matches without repeats: a call's summary or a bot's echo often says again
    what the caller said in that call, and one fact shown three times would crowd out two others."""
    kept: list[Found] = []
    for f in found:
        said = f.text.casefold()
        if not any(
            k.call_id == f.call_id and (said in k.text.casefold() or k.text.casefold() in said) for k in kept
        ):
            kept.append(f)
        if len(kept) == limit:
            break
    return tuple(kept)


class PostgresSearch:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        config: str,
        limit: int,
        timeout_s: float,
        disclosure: DisclosurePolicy | None = None,
    ) -> None:
        # Shares the engine's pool; one statement each, so no BEGIN and ROLLBACK round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._config = config
        self._limit = limit
        self._timeout_s = timeout_s
        self._disclosure = disclosure or DisclosurePolicy()
        self.mode = f"Postgres full-text search (configuration {config!r})"
        self._common: list[str] = []
        self._common_at = -_COMMON_REFRESH_S  # monotonic time of the last refresh
        self._refreshing: asyncio.Task[None] | None = None

    async def find(self, caller: CallerId, said: str) -> tuple[Found, ...]:
        try:
            return await within(self._timeout_s, self._query(caller, said))
        except (SQLAlchemyError, OSError) as exc:  # OSError: the deadline passed, too
            log.warning("memory search failed, answering without it: %s", describe_error(exc))
            return ()

    async def search(self, caller: CallerId, said: str, limit: int) -> tuple[Found, ...]:
        return await within(self._timeout_s, self._query(caller, said, limit))

    async def _query(self, caller: CallerId, said: str, limit: int | None = None) -> tuple[Found, ...]:
        limit = limit or self._limit
        if time.monotonic() - self._common_at > _COMMON_REFRESH_S and self._refreshing is None:
            # In the background: a turn does not wait for it, and uses the list it has meanwhile.
            self._refreshing = asyncio.create_task(self._refresh_common())
        params = {
            "config": self._config,
            "said": said,
            "bot_number": caller.bot_number,
            "caller_hash": caller.caller_hash,
            "per_word": _PER_WORD,
            "common": self._common,
            "candidates": 3 * limit,  # room for the repeats that _distinct drops
            "verified_only": self._disclosure.verified_only(caller.bot_number),
        }
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(_SEARCH, params)).all()
        return _distinct([_found(r) for r in rows], limit)

    async def _refresh_common(self) -> None:
        try:
            await within(self._timeout_s * 4, self._read_common())
        except (SQLAlchemyError, OSError) as exc:
            log.info("could not read the archive's most common words: %s", describe_error(exc))
        finally:
            self._common_at = time.monotonic()
            self._refreshing = None

    async def _read_common(self) -> None:
        async with self._autocommit.connect() as conn:
            self._common = list((await conn.execute(_COMMON_WORDS, {"share": _COMMON})).scalars())

    async def prepare(self) -> None:
        """Make the archive's vectors use the configured text-search configuration from now on, and
        learn its most common words."""
        await self._read_common()
        self._common_at = time.monotonic()
        async with self._autocommit.connect() as conn:
            changed = (await conn.execute(_SET_CONFIG, {"config": self._config})).first()
        if changed is not None:
            log.warning(
                "search now indexes with text-search configuration %r; turns archived before keep the "
                "old one's words until re-indexed (see docs/search.md)",
                self._config,
            )
