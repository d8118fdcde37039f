"""Caller identity: phone numbers normalised to E.164 and turned into a keyed hash.

A caller is `(bot number, caller number)`: the same person calling two bots is two callers, so no bot
can ever read memory another bot collected. Stores only ever see the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import phonenumbers
from pydantic.config import JsonDict

from callmemory.core.errors import InvalidPhoneNumber

# How a number may be written: digits, the usual separators and a leading +. Documented as the pattern
# of every phone-number field of the API, and checked before parsing, so that the pattern is exactly what
# is accepted (phonenumbers alone would also take letters, `tel:` URIs and extensions).
PHONE_PATTERN: Final = r"^\+?[0-9 ().-]{1,64}$"
# A number field's JSON schema: the pattern, and a format for what no pattern can say (a possible number).
PHONE_SCHEMA: Final[JsonDict] = {"pattern": PHONE_PATTERN, "format": "phone"}
_WRITTEN = re.compile(PHONE_PATTERN)


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
# the last few thousand results are kept (in process memory only, like the turns in memory/hot/codec.py).
@lru_cache(maxsize=4096)
def _e164(raw: str, region: str, strict: bool) -> tuple[str | None, str]:
    """`raw` in E.164, or None and what is wrong with it."""
    if not _WRITTEN.fullmatch(raw):
        return None, "may hold only digits, spaces, ( ) . - and a leading +"
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
