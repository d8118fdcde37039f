"""VoIPBin's settings, mixed into the service's `Settings` (environment names `CALLMEMORY_VOIPBIN_...`)."""

from __future__ import annotations

import re
import uuid
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callmemory.core.config import OptionalSecret
from callmemory.core.trust import Disclosure


class VoipbinBot(BaseModel):
    """How callmemory drives calls to one VoIPBin number (a value of CALLMEMORY_VOIPBIN_BOTS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["own_llm", "managed_ai"] = Field(
        default="own_llm",
        description="own_llm: our LLM answers VoIPBin transcripts; managed_ai: a VoIPBin AI talks.",
    )
    ai_id: str | None = Field(default=None, description="The VoIPBin AI's uuid (managed_ai mode).")
    language: str = Field(default="en-US", description="Language of speech recognition and speech.")
    provider: str = Field(default="gcp", description="VoIPBin's text-to-speech provider (gcp or aws).")
    voice_id: str = Field(default="", description="The provider's voice; empty: its default voice.")
    greeting_new: str | None = Field(default=None, description="Overrides CALLMEMORY_GREETING_NEW.")
    greeting_returning: str | None = Field(
        default=None, description="Overrides CALLMEMORY_GREETING_RETURNING ({topic} is replaced)."
    )
    disclosure: Disclosure | None = Field(
        default=None,
        description="Overrides CALLMEMORY_DISCLOSURE for this bot. VoIPBin vouches for no caller: under "
        "verified, a call reaches the caller's memory only once the bot has verified the caller.",
    )

    @model_validator(mode="after")
    def _managed_ai_needs_an_ai(self) -> Self:
        if self.mode == "managed_ai" and not self.ai_id:
            raise ValueError("a managed_ai bot needs `ai_id`, the uuid of its VoIPBin AI")
        return self


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class VoipbinSettings(BaseModel):
    voipbin_bots: dict[str, VoipbinBot] = Field(
        default_factory=dict,
        description='JSON: bot E.164 number -> settings, e.g. {"+15559876543": {"mode": "managed_ai", '
        '"ai_id": "..."}}. Numbers not listed get the defaults (own_llm mode).',
    )
    voipbin_webhook_secret: OptionalSecret = Field(
        default=None,
        description="The webhook secret set in VoIPBin; when set, unsigned or badly signed events get 401.",
    )
    voipbin_fetch_token: OptionalSecret = Field(
        default=None,
        description="Secret path segment of the fetch URL (VoIPBin does not sign fetches). Unset: no fetch.",
    )
    voipbin_api_url: str = Field(default="https://api.voipbin.net/v1.0", description="VoIPBin's REST API.")
    voipbin_access_key: OptionalSecret = Field(
        default=None, description="VoIPBin access key, for speaking own-LLM answers into calls."
    )
    voipbin_api_timeout_s: float = Field(default=3.0, gt=0, description="Per attempt.")
    voipbin_api_attempts: int = Field(default=3, ge=1, le=10, description="Tries of a talk on 5xx/errors.")
    voipbin_brief_chars: int = Field(
        default=1500, ge=100, description="Upper bound of the memory brief handed to a VoIPBin AI."
    )
    voipbin_sleep_ms: int = Field(
        default=3_600_000, ge=1000, description="own_llm mode: how long the fetched `sleep` holds the call."
    )

    @field_validator("voipbin_bots")
    @classmethod
    def _bots_are_usable(cls, value: dict[str, VoipbinBot]) -> dict[str, VoipbinBot]:
        for number, bot in value.items():
            if not re.fullmatch(r"\+[0-9]{7,15}", number):
                raise ValueError(
                    f"CALLMEMORY_VOIPBIN_BOTS: key {number!r} is not an E.164 number like +15559876543"
                )
            if bot.ai_id is not None and not _is_uuid(bot.ai_id):
                # VoIPBin parses ai_talk's assistance_id as a UUID and stops the call's flow otherwise:
                # every call to this number would go silent.
                raise ValueError(
                    f"CALLMEMORY_VOIPBIN_BOTS: the ai_id of bot {number} is not a UUID; it must be the id of "
                    "the bot's VoIPBin AI, like 8c5a9e2a-5b1e-4b7a-9a43-3c2d0f6e1b7d"
                )
        return value

    def voipbin_bot(self, bot_e164: str) -> VoipbinBot:
        return self.voipbin_bots.get(bot_e164) or VoipbinBot()
