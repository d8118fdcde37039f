"""Caller identity: phone numbers normalised to E.164 and turned into a keyed hash.

A caller is `(bot number, caller number)`: the same person calling two bots is two callers, so no bot
can ever read memory another bot collected. Stores only ever see the hash.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from callmemory.errors import InvalidPhoneNumber


@dataclass(frozen=True, slots=True)
class NumberPolicy:
    default_region: str = "US"
    strict: bool = False

    def normalise(self, raw: str, *, field: str) -> str:
        """Return `raw` in E.164 (+14155551234) or raise InvalidPhoneNumber naming `field`."""
        if not raw or not raw.strip():
            raise InvalidPhoneNumber(f"`{field}` is empty; expected a phone number", field=field)
        e164, fault = _e164(raw, self.default_region, self.strict)
        if e164 is None:
            raise InvalidPhoneNumber(f"`{field}` {fault}", field=field)
        return e164


# Every event of a live call names the same numbers, and parsing one is a good part of an event's CPU:
# the last few thousand results are kept (in process memory only, like the turns in memory/hot.py).
@lru_cache(maxsize=4096)
def _e164(raw: str, region: str, strict: bool) -> tuple[str | None, str]:
    """`raw` in E.164, or None and what is wrong with it."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        return None, f"is not a phone number: {exc}"
    ok = phonenumbers.is_valid_number(parsed) if strict else phonenumbers.is_possible_number(parsed)
    if not ok:
        return None, f"is not a {'valid' if strict else 'possible'} phone number"
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)), ""


@dataclass(frozen=True, slots=True)
class CallerId:
    bot_number: str  # E.164; the bot's own number is not personal data and is stored in the clear
    caller_hash: str  # hex HMAC of bot|caller


class CallerHasher:
    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the caller hash secret must not be empty")
        self._secret = secret

    def caller_id(self, bot_e164: str, caller_e164: str) -> CallerId:
        digest = hmac.new(self._secret, f"{bot_e164}|{caller_e164}".encode(), hashlib.sha256).hexdigest()
        return CallerId(bot_number=bot_e164, caller_hash=digest)
