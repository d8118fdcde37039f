"""The search's settings, mixed into the service's `Settings` (environment names `CALLMEMORY_SEARCH_...`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SearchSettings(BaseModel):
    search_enabled: bool = Field(
        default=True,
        description="At each caller turn, search the caller's whole archive (turns and call summaries) for "
        "what they just said and put the best matches into the prompt. Off: the prompt holds only the "
        "summaries and the most recent turns.",
    )
    search_text_config: str = Field(
        default="english",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL text-search configuration the archive is indexed and searched with "
        "(`simple` for no stemming, or a language: `german`, `french`, ...). Set at start-up; turns "
        "archived before a change keep the words of the old one (see docs/search.md to re-index).",
    )
    search_results: int = Field(
        default=6, ge=1, le=50, description="At most this many matches are fetched for a turn."
    )
    search_timeout_s: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="Deadline of one search; past it (Postgres slow or down) the turn is answered "
        "without search results.",
    )
    search_prompt_share: float = Field(
        default=0.3,
        ge=0,
        le=0.9,
        description="Share of memory_context_tokens the matches may take; what they leave unused goes "
        "to the summary and the recent turns (see docs/search.md for how it was chosen).",
    )
