"""The app with Twilio on: the tests' Auth Token, and the public URL Twilio calls it at."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.twilio import PUBLIC_URL, TOKEN


@pytest.fixture
def twilio_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"twilio_auth_token": SecretStr(TOKEN), "twilio_public_url": PUBLIC_URL}
    )


@pytest.fixture
async def http(twilio_settings: Settings, llm: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with running(twilio_settings) as client:
        yield client
