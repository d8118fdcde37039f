"""The seed webhook's settings, mixed into the service's `Settings` (environment names `CALLMEMORY_...`).

Its authentication (auth.py): production refuses to start without a secret or a token.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from callmemory.core.config import OptionalSecret


class SeedSettings(BaseModel):
    webhook_secret: OptionalSecret = Field(
        default=None,
        description="Shared secret of the seed webhook: each request must carry X-Callmemory-Signature "
        '(t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">), or gets 401. Unset (and no '
        "webhook_token): /webhook/call is open to anyone, refused in production.",
    )
    webhook_token: OptionalSecret = Field(
        default=None,
        description="For platforms that cannot sign: a static `Authorization: Bearer <token>` the seed "
        "webhook accepts instead of a signature (no protection against replays).",
    )
    webhook_tolerance_s: float = Field(
        default=300.0,
        ge=1,
        description="A signature whose timestamp is further than this from the server's clock is refused.",
    )

    @property
    def webhook_authenticated(self) -> bool:
        """Whether the seed webhook refuses requests that are neither signed nor carry the token."""
        return self.webhook_secret is not None or self.webhook_token is not None
