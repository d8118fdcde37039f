"""The summary job's settings, mixed into the service's `Settings` (environment names `CALLMEMORY_...`).

Summaries have an LLM budget of their own (endpoint, model, time limit, tokens, concurrency), apart from
the live answers': a summary may take a minute on a model served on CPU, where a caller waits seconds.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

from callmemory.core.config import OptionalSecret, OptionalText

SummaryFormat = Literal["json_schema", "json_object", "text"]


class SummarySettings(BaseModel):
    summary_worker: bool = Field(
        default=True,
        description="Summarise archived calls: `serve` starts a summary worker process of its own, at a "
        "lower CPU priority than its web workers (an app built with create_app runs the worker in its "
        "event loop). Off: jobs stay queued in Postgres for `callmemory summarise` run elsewhere.",
    )
    summary_base_url: OptionalText = Field(
        default=None,
        description="OpenAI-compatible endpoint of summaries. Unset: the live answers' OPENAI_BASE_URL, "
        "shared with them (see summary_yield_to_live).",
    )
    summary_api_key: OptionalSecret = Field(
        default=None, description="API key of summary_base_url. Unset: OPENAI_API_KEY."
    )
    summary_model: OptionalText = Field(default=None, description="Model of summaries. Unset: llm_model.")
    summary_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Time limit of one summary request, apart from the live answers' llm_timeout_s; the "
        "default lets a small model served on CPU finish.",
    )
    summary_max_tokens: int = Field(
        default=600,
        ge=50,
        description="max_tokens of a summary request; doubled (twice at most) after an answer cut at it.",
    )
    summary_transcript_tokens: int = Field(
        default=6000,
        ge=100,
        description="At most this much of a call's transcript (its end) is summarised; halved (twice at "
        "most) after an answer of the wrong shape, a timeout or a prompt too long for the model.",
    )
    summary_format: SummaryFormat = Field(
        default="json_schema",
        description="The strongest response_format asked for: json_schema (strict), json_object or text "
        "(instructions only). A provider refusing one is asked with the next from then on.",
    )
    summary_max_attempts: int = Field(
        default=4,
        ge=1,
        description="LLM requests per call before its summary is made from the transcript instead "
        "(degraded; `callmemory summaries requeue --degraded` tries the LLM again).",
    )
    summary_retry_base_s: float = Field(
        default=5.0,
        ge=0,
        description="Back-off after a timeout or a provider error: base * 2^(try - 1) seconds. A wrong "
        "answer is asked again at once, changed.",
    )
    summary_lease_s: float = Field(
        default=300.0,
        gt=0,
        description="A claimed job is taken again after this long (its worker died); renewed with each "
        "request, so longer than summary_timeout_s.",
    )
    summary_poll_s: float = Field(default=2.0, gt=0, description="How often an idle worker looks for jobs.")
    summary_concurrency: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Summary requests one worker has in flight at once. Small: a server on CPU (llama.cpp) "
        "runs requests one after another, and summaries queued there delay live answers.",
    )
    summary_yield_to_live: bool = Field(
        default=True,
        description="When summaries share the live answers' endpoint, a summary starts only while no live "
        "answer is in flight (noted in Redis, across processes), and summary_quiet_s after one was seen.",
    )
    summary_quiet_s: float = Field(
        default=1.0,
        ge=0,
        description="How long a summary on a shared endpoint waits after a live answer it saw.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> Self:
        if self.summary_lease_s <= self.summary_timeout_s:
            raise ValueError(
                "CALLMEMORY_SUMMARY_LEASE_S must be longer than CALLMEMORY_SUMMARY_TIMEOUT_S: a second "
                "worker would take a job the first is still waiting on"
            )
        return self
