"""Prometheus metrics of one app: built per app with a registry of its own, handed down like a client.

Per app, not module-global: prometheus_client refuses a second registration of a name in one registry,
so metrics created at import into its default registry would break every test process that builds
more than one app, and counts would leak from one test into the next.

Several uvicorn workers: `callmemory serve` sets PROMETHEUS_MULTIPROC_DIR (a fresh directory under the
data dir) before any worker imports prometheus_client, which then keeps every value in per-process
files; `/metrics` merges them, so counters and histograms add up across workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from callmemory.core.errors import CallMemoryError
from callmemory.core.events import CallEnded, CallerSpoke, CallerVerified, CallEvent, CallStarted
from callmemory.observability import context
from callmemory.observability.tracing import Span, Spans

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_ANSWER_FORMS: Final = ("as_written", "shaped", "unsayable")

# Memory reads are Redis round trips (ms); rehydration, archive writes and LLM calls take longer.
_FAST: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def event_kind(event: CallEvent) -> str:
    """The `type` label of a core call event, the same whichever platform's format it came in."""
    match event:
        case CallStarted():
            return "ringing"
        case CallerSpoke():
            return "speech"
        case CallEnded():
            return "hangup"
        case CallerVerified():
            return "caller_verified"


@dataclass
class WebhookEvent:
    """Labels of one webhook request, filled in by its handler as it learns them."""

    type: str = "unparsed"
    outcome: str = "ok"


_Labelled = Counter | Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, spans: Spans | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._spans = spans  # with tracing on, every timed block and webhook is a span too
        self._children: dict[tuple[object, ...], Any] = {}
        r = self.registry
        self.webhook_events = Counter(
            "callmemory_webhook_events",
            "Telephony webhook requests by platform, event type and outcome (applied, duplicate, "
            "ignored, held, or the error code).",
            ["platform", "type", "outcome"],
            registry=r,
        )
        self.memory_read_seconds = Histogram(
            "callmemory_memory_read_seconds",
            "Reading a caller's memory: hot (Redis) or rehydrate (from Postgres into Redis, after a miss).",
            ["source"],
            buckets=_FAST,
            registry=r,
        )
        self.rehydrations = Counter(
            "callmemory_rehydrations",
            "Callers whose memory was reloaded from Postgres into Redis.",
            registry=r,
        )
        self.llm_seconds = Histogram(
            "callmemory_llm_request_seconds",
            "LLM requests by purpose (answer, summary) and outcome (ok, fallback / failed).",
            ["purpose", "outcome"],
            buckets=_SLOW,
            registry=r,
        )
        self.llm_fallbacks = Counter(
            "callmemory_llm_fallbacks",
            "Turns answered with the fallback line, by reason (timeout, error, empty, unsayable).",
            ["reason"],
            registry=r,
        )
        self.answers = Counter(
            "callmemory_answers",
            "LLM answers by form: as_written (spoken as the model wrote them), shaped (made sayable "
            "first: cleaned or cut, docs/speech.md), unsayable (nothing sayable left: the fallback line "
            "was spoken).",
            ["form"],
            registry=r,
        )
        for form in _ANSWER_FORMS:
            self.answers.labels(form=form)  # every form is shown from the start, at 0
        self.answers_shaped = Counter(
            "callmemory_answers_shaped",
            "What was changed in LLM answers before they were spoken, by reason (markdown, list, newlines, "
            "emoji, salutation, signoff, placeholder, cut_at_sentence, capped); one answer may count "
            "under several.",
            ["reason"],
            registry=r,
        )
        self.calls_by_trust = Counter(
            "callmemory_calls_by_trust",
            "Calls begun, by the caller's trust at the start (verified, unverified) and what the bot's "
            "disclosure policy made of it: memory disclosed, or the call kept apart from it (docs/"
            "caller-trust.md).",
            ["trust", "memory"],
            registry=r,
        )
        self.calls_verified = Counter(
            "callmemory_calls_verified_during_the_call",
            "Calls whose caller the bot verified during the call (a PIN, a one-time code).",
            registry=r,
        )
        self.archive_write_seconds = Histogram(
            "callmemory_archive_write_seconds",
            "Archiving a finished call to Postgres, by outcome (stored, duplicate, failed).",
            ["outcome"],
            buckets=_SLOW,
            registry=r,
        )
        self.pending_archives = Gauge(
            "callmemory_pending_archives",
            "Ended calls waiting in Redis for Postgres (read from Redis at scrape time).",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.quarantined_archives = Gauge(
            "callmemory_quarantined_archives",
            "Ended calls Postgres refused too often, set aside in Redis for an operator (read from "
            "Redis at scrape time; `callmemory quarantine list`).",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.archive_refusals = Counter(
            "callmemory_archive_refusals",
            "Times Postgres refused a call's data (not an outage): retried, then quarantined.",
            registry=r,
        )
        self.flusher_runs = Counter(
            "callmemory_flusher_runs", "Passes of the pending-archive flusher.", registry=r
        )
        self.flushed = Counter(
            "callmemory_flushed_archives", "Pending calls the flusher archived.", registry=r
        )
        self.sweeper_runs = Counter("callmemory_sweeper_runs", "Passes of the idle-call sweeper.", registry=r)
        self.calls_swept = Counter(
            "callmemory_calls_swept", "Idle calls the sweeper ended and archived.", registry=r
        )
        self.voipbin_talks = Counter(
            "callmemory_voipbin_talks",
            "Answers sent into VoIPBin calls, by outcome: spoken, unauthorized (the access key was "
            "refused: a configuration error), refused (other 4xx), failed (5xx or unreachable).",
            ["outcome"],
            registry=r,
        )
        self.summary_jobs = Counter(
            "callmemory_summary_jobs",
            "Summary jobs by outcome: done, failed (retried later), degraded (out of tries, or nothing left "
            "to change: summarised from the transcript instead).",
            ["outcome"],
            registry=r,
        )
        self.summary_failures = Counter(
            "callmemory_summary_failures",
            "Summary requests that gave no summary, by reason: timeout, provider, too_long, truncated, "
            "not_json, missing_key, wrong_type.",
            ["reason"],
            registry=r,
        )
        self.summary_degraded = Counter(
            "callmemory_summary_degraded",
            "Summary jobs summarised from the transcript, by the reason of their last failed request.",
            ["reason"],
            registry=r,
        )
        self.greetings_refused = Counter(
            "callmemory_prepared_greetings_refused",
            "Greetings the summary model prepared that were not stored, the template being said instead, "
            "by reason: unsayable, role_label, file_name, transcript_echo, apology, not_a_greeting, "
            "too_many_sentences, too_long (docs/summaries.md).",
            ["reason"],
            registry=r,
        )
        self.profile_entries_refused = Counter(
            "callmemory_profile_entries_refused",
            "Profile entries the summary model wrote that were left out, by reason: role_label, "
            "file_name, apology (docs/summaries.md).",
            ["reason"],
            registry=r,
        )
        self._span_names = {
            self.memory_read_seconds: "memory read",
            self.llm_seconds: "llm request",
            self.archive_write_seconds: "archive write",
        }

    @contextmanager
    def timed(self, histogram: Histogram, **labels: str) -> Iterator[dict[str, str]]:
        """Observe the block's duration; the block may set or change labels (e.g. the outcome) in the
        dict it is given."""
        found = dict(labels)
        with self._span(self._span_names[histogram]) as span:
            started = time.perf_counter()
            try:
                yield found
            finally:
                self._child(histogram, found).observe(time.perf_counter() - started)
                _describe(span, found)

    def count_answer(self, shaped: Iterable[str], *, sayable: bool) -> None:
        """Count one LLM answer: its form, and each reason it was shaped for."""
        reasons = list(shaped)
        form = "unsayable" if not sayable else "shaped" if reasons else "as_written"
        self._child(self.answers, {"form": form}).inc()
        for reason in reasons:
            self._child(self.answers_shaped, {"reason": reason}).inc()

    def count_call_trust(self, trust: str, *, apart: bool) -> None:
        """Count one call begun: its trust, and whether it was kept apart from the caller's memory."""
        self._child(
            self.calls_by_trust, {"trust": trust, "memory": "kept_apart" if apart else "disclosed"}
        ).inc()

    @contextmanager
    def webhook(self, platform: str) -> Iterator[WebhookEvent]:
        """Count one webhook request when it ends; a refused one counts under its error code."""
        seen = WebhookEvent()
        with self._span(f"webhook {platform}") as span:
            try:
                yield seen
            except CallMemoryError as exc:
                seen.outcome = exc.code
                raise
            except Exception:
                seen.outcome = "error"
                raise
            finally:
                labels = {"platform": platform, "type": seen.type, "outcome": seen.outcome}
                self._child(self.webhook_events, labels).inc()
                _describe(span, labels)

    def _child(self, metric: _Labelled, labels: dict[str, str]) -> Any:
        """`metric.labels(**labels)`, kept: prometheus-client checks and locks on every call, and these
        run on every event. The label values are few (types, outcomes, reasons), so is the cache."""
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child

    def _span(self, name: str) -> AbstractContextManager[Span | None]:
        return self._spans.span(name) if self._spans is not None else nullcontext()

    def exposition(self) -> tuple[bytes, str]:
        """The text format for a scrape: this process's registry, or every worker's files merged."""
        if os.environ.get(MULTIPROC_ENV):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]  # unannotated upstream
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _describe(span: Span | None, labels: dict[str, str]) -> None:
    """A span's attributes: the metric's labels and the ids of the log lines, nothing about the caller
    but the hash prefix."""
    if span is not None:
        for key, value in {**labels, **context.current()}.items():
            span.set_attribute(key, value)
