"""Caller trust: whether a call's caller ID is vouched for, and what memory such a caller may reach.

Anyone can present any number. A call is `verified` only when its platform vouches for the number at
the start (Twilio's `StirVerstat` of `TN-Validation-Passed-A`, a signed seed ringing's
`caller_verified`), or when the bot checked the caller during the call (a PIN, a one-time code). Every
other call is `unverified`: missing, failed, B and C attestations, and every VoIPBin call.

The disclosure policy decides what that means per bot. Under `open` every call reaches the memory of
its number, as before trust existed. Under `verified` an unverified call is kept *apart*: it is greeted
and prompted as a brand-new caller, and what it says is archived under the number, marked unverified,
but never joins the caller's memory, until the call is verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Trust(StrEnum):
    VERIFIED = "verified"
    UNVERIFIED = "unverified"


class Disclosure(StrEnum):
    OPEN = "open"  # every call reaches its number's memory (caller ID taken as identity)
    VERIFIED = "verified"  # only verified calls reach it; the others are kept apart


@dataclass(frozen=True, slots=True)
class DisclosurePolicy:
    """The policy of each bot: `default`, unless a bot (by E.164 number) has its own."""

    default: Disclosure = Disclosure.OPEN
    bots: Mapping[str, Disclosure] = field(default_factory=dict)

    def of(self, bot_e164: str) -> Disclosure:
        return self.bots.get(bot_e164, self.default)

    def verified_only(self, bot_e164: str) -> bool:
        """Whether the bot's callers' memory holds only what verified calls built."""
        return self.of(bot_e164) is Disclosure.VERIFIED

    def keeps_apart(self, bot_e164: str, trust: Trust) -> bool:
        """Whether a call of this trust is kept apart from its number's memory."""
        return trust is not Trust.VERIFIED and self.verified_only(bot_e164)
