"""Twilio's settings, mixed into the service's `Settings` (environment names `CALLMEMORY_TWILIO_...`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from callmemory.core.config import OptionalSecret, OptionalText


class TwilioSettings(BaseModel):
    twilio_auth_token: OptionalSecret = Field(
        default=None,
        description="The Twilio account's primary Auth Token: every request to /twilio must carry a valid "
        "X-Twilio-Signature made with it, or gets 403. Unset: the /twilio routes answer 404.",
    )
    twilio_public_url: OptionalText = Field(
        default=None,
        description="The address Twilio calls this service at, e.g. https://memory.example.com: signatures "
        "are checked against it plus the request's path and query, and gather actions point there. Unset: "
        "the URL the request arrived at (right only without a proxy in front).",
    )
    twilio_voice: OptionalText = Field(
        default=None, description="`<Say>` voice, e.g. Polly.Joanna. Unset: the account's default voice."
    )
    twilio_language: str = Field(default="en-US", description="Language of speech recognition and `<Say>`.")
    twilio_goodbye: str = Field(
        default="Sorry, I didn't catch that. Goodbye.",
        description="Said before hanging up when the caller says nothing after the bot has spoken.",
    )
