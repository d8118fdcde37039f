"""schemathesis against the service's own OpenAPI schema: whatever it sends, no answer is a 5xx."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from callmemory.app import create_app
from callmemory.local_server import served
from callmemory.settings import Settings
from support.llm import FakeLLM

# Bounded so that the whole file stays well under a minute.
EXAMPLES = 150  # per generation mode
SEQUENCES = 50


def bounded(examples: int) -> hypothesis_settings:
    # No deadline and no health checks: the requests go to a real server sharing a busy machine.
    return hypothesis_settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


def fuzz(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=schema.as_strategy(generation_mode=mode))
        @bounded(EXAMPLES)
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=base_url, checks=[not_a_server_error])

        no_server_error()


async def test_generated_requests_from_the_openapi_schema_never_get_a_server_error(
    settings: Settings, llm: FakeLLM
) -> None:
    async with served(create_app(settings)) as base_url:
        await asyncio.to_thread(fuzz, base_url)


CALL_IDS = st.sampled_from(["f-1", "f-2", "f-3"])
NUMBERS = st.sampled_from(["+14155551234", "+14155550000", "+442071838750", "4155551234", "+1", "x"])
EVENTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["call.ringing", "call.speech_recognized", "call.hangup", "call.dtmf"]),
        "call_id": CALL_IDS,
        "from": NUMBERS,
    },
    optional={
        "to": NUMBERS,
        "speech": st.text(max_size=40),
        "event_id": st.sampled_from(["e-1", "e-2"]),
        "sequence": st.integers(min_value=-1, max_value=3),
        "reason": st.text(max_size=10),
    },
)


def play(base_url: str) -> None:
    """Random sequences of plausible events on a few calls: the core's states, not only the parser."""
    with httpx.Client(base_url=base_url) as http:

        @given(events=st.lists(EVENTS, min_size=1, max_size=12))
        @bounded(SEQUENCES)
        def no_server_error(events: list[dict[str, Any]]) -> None:
            for event in events:
                response = http.post("/webhook/call", json=event)
                assert response.status_code < 500, (event, response.text)

        no_server_error()


async def test_random_event_sequences_on_a_few_calls_never_get_a_server_error(
    settings: Settings, llm: FakeLLM
) -> None:
    async with served(create_app(settings)) as base_url:
        await asyncio.to_thread(play, base_url)
