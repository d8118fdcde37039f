"""Twilio's settings, mixed into the service's `Settings` (environment names `CALLMEMORY_TWILIO_...`)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator


class TwilioSettings(BaseModel):
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="The Twilio account's primary Auth Token: every request to /twilio must carry a valid "
        "X-Twilio-Signature made with it, or gets 403. Unset: the /twilio routes answer 404.",
    )
    twilio_public_url: str | None = Field(
        default=None,
        description="The address Twilio calls this service at, e.g. https://memory.example.com: signatures "
        "are checked against it plus the request's path and query, and gather actions point there. Unset: "
        "the URL the request arrived at (right only without a proxy in front).",
    )
    twilio_voice: str | None = Field(
        default=None, description="`<Say>` voice, e.g. Polly.Joanna. Unset: the account's default voice."
    )
    twilio_language: str = Field(default="en-US", description="Language of speech recognition and `<Say>`.")
    twilio_goodbye: str = Field(
        default="Sorry, I didn't catch that. Goodbye.",
        description="Said before hanging up when the caller says nothing after the bot has spoken.",
    )

    @field_validator("twilio_auth_token", "twilio_public_url", "twilio_voice", mode="before")
    @classmethod
    def _twilio_blank_is_unset(cls, value: object) -> object:
        # As for the other settings: `FOO=` in a compose file means "not configured".
        return None if isinstance(value, str) and not value.strip() else value
