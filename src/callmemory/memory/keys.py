"""Caller identity: phone numbers normalised to E.164 and turned into a keyed hash.

A caller is `(bot number, caller number)`: the same person calling two bots is two callers, so no bot
can ever read memory another bot collected. Stores only ever see the hash.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

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
        try:
            parsed = phonenumbers.parse(raw, self.default_region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidPhoneNumber(f"`{field}` is not a phone number: {exc}", field=field) from exc
        ok = phonenumbers.is_valid_number(parsed) if self.strict else phonenumbers.is_possible_number(parsed)
        if not ok:
            raise InvalidPhoneNumber(
                f"`{field}` is not a {'valid' if self.strict else 'possible'} phone number", field=field
            )
        return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


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
