"""What the core understands of a call, independent of any telephony platform's wire format.

Telephony adapters parse their platform's webhooks into these events and render a `Reply` back into
their platform's actions; nothing below the adapters ever sees a platform's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from callmemory.core.trust import Trust


@dataclass(frozen=True, slots=True)
class CallRef:
    """A call as the platform names it; ids are only unique within one platform."""

    platform: str
    call_id: str


@dataclass(frozen=True, slots=True)
class CallStarted:
    call: CallRef
    caller_number: str
    bot_number: str | None  # None: the platform did not say; the configured default applies
    trust: Trust = Trust.UNVERIFIED  # what the platform vouches for the caller ID (core/trust.py)


@dataclass(frozen=True, slots=True)
class CallerSpoke:
    call: CallRef
    caller_number: str
    text: str
    # The platform's identity of this event (its event id, or the call's sequence number): a
    # redelivery with the same key is answered with the first answer, never recorded twice.
    event_key: str | None = None
    bot_number: str | None = None  # lets a call whose live state was lost be reopened


@dataclass(frozen=True, slots=True)
class CallEnded:
    call: CallRef
    caller_number: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallerVerified:
    """The bot checked the caller during the call (a PIN, a one-time code): the call is verified now."""

    call: CallRef
    caller_number: str


CallEvent = CallStarted | CallerSpoke | CallEnded | CallerVerified


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot does next: say something, then keep listening or hang up."""

    say: str
    then: Literal["listen", "hangup"] = "listen"


class Role(StrEnum):
    CALLER = "caller"
    BOT = "bot"


class Verification(StrEnum):
    """What verifying a live call did."""

    VERIFIED = "verified"  # from its next turn on, the call reaches the caller's memory
    ALREADY_VERIFIED = "already_verified"


class EndOutcome(StrEnum):
    """What a hangup did to the archive."""

    ARCHIVED = "archived"
    ALREADY_ARCHIVED = "already_archived"
    UNKNOWN_CALL = "unknown_call"
    PENDING = "archive_pending"  # the archive is down; the call is kept and archived once it is back
