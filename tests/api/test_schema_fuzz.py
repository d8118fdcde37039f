"""schemathesis against the service's own OpenAPI schema, with all its checks: every answer is one the schema
describes (never a 5xx), schema-valid requests are accepted and schema-violating ones refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr

from callmemory.app import create_app
from callmemory.devtools.local_server import served
from callmemory.settings import Settings
from support.api import ADMIN_KEY
from support.llm import FakeLLM

# Bounded so that the whole file stays well under a minute.
EXAMPLES = 50  # per operation and phase
SEQUENCES = 50
SUPPORT = Path(__file__).parent.parent / "support"


def bounded(examples: int) -> hypothesis_settings:
    # No deadline and no health checks: the requests go to a real server sharing a busy machine.
    return hypothesis_settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


def schemathesis_run(base_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The schemathesis CLI, every phase and every check, bounded; the /v1 routes with an API key."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        *("--config-file", str(SUPPORT / "schemathesis.toml")),
        "run",
        f"{base_url}/openapi.json",
        *("--max-examples", str(EXAMPLES), "--workers", "1", "--no-color"),
        *("--generation-database", "none", "--header", f"Authorization: Bearer {ADMIN_KEY}"),
    ]
    hooks = {"SCHEMATHESIS_HOOKS": "fuzz_hooks", "PYTHONPATH": str(SUPPORT)}
    environment = {**os.environ, **hooks}
    return subprocess.run(
        command, check=False, cwd=workdir, env=environment, capture_output=True, text=True, timeout=300
    )


async def test_schemathesis_with_all_checks_finds_no_answer_the_schema_does_not_describe(
    settings: Settings, llm: FakeLLM, tmp_path: Path
) -> None:
    config = tomllib.loads((SUPPORT / "schemathesis.toml").read_text())
    fetch_token = SecretStr(config["parameters"]["path.token"])
    app = create_app(settings.model_copy(update={"voipbin_fetch_token": fetch_token}))
    async with served(app) as base_url:
        run = await asyncio.to_thread(schemathesis_run, base_url, tmp_path)

    print(run.stdout[-1500:])  # the summary: phases, checks, test cases generated
    assert run.returncode == 0, run.stdout[-20_000:]


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
