"""`callmemory simulate --format twilio`: one call as Twilio places it.

Form-encoded posts signed with the Auth Token over the URL Twilio would request (the service's public
URL, when it has one), TwiML read back, and each answer's `<Gather>` action followed as Twilio follows it.
"""

from __future__ import annotations

import secrets
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from callmemory.platforms.base import Dial, Phone, SimulationError
from callmemory.platforms.twilio.routes import PREFIX
from callmemory.platforms.twilio.signature import HEADER
from callmemory.settings import Settings


@dataclass(frozen=True, slots=True)
class TwilioSimulation:
    settings: Settings
    dial: Dial

    @classmethod
    def start(cls, settings: Settings, dial: Dial) -> TwilioSimulation:
        """A service started by simulate itself gets Twilio on, with a token of its own."""
        if dial.own_service:
            token = settings.twilio_auth_token or SecretStr(secrets.token_urlsafe(24))
            settings = settings.model_copy(update={"twilio_auth_token": token})
        return cls(settings, dial)

    def phone(self, http: httpx.AsyncClient, url: str) -> Phone:
        token = self.settings.twilio_auth_token
        if token is None:
            raise SimulationError("set CALLMEMORY_TWILIO_AUTH_TOKEN to the service's Twilio Auth Token")
        public_url = (self.settings.twilio_public_url or url).rstrip("/")
        return TwilioPhone(http, self.dial.caller, self.dial.bot, token.get_secret_value(), public_url)


def _call_sid() -> str:
    return f"CA{uuid.uuid4().hex}"


@dataclass
class TwilioPhone:
    http: httpx.AsyncClient
    caller: str
    bot: str
    token: str
    public_url: str  # where Twilio believes the service is: what it signs
    call_sid: str = field(default_factory=_call_sid)
    _gather_action: str | None = None  # where the caller's next words go; None once no <Gather> is left

    async def _post(self, url: str, **fields: str) -> httpx.Response:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": self.bot,
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
            **fields,
        }
        headers = {HEADER: RequestValidator(self.token).compute_signature(url, params)}
        # Sent to the service we talk to, which may be the public URL's backend rather than the URL itself.
        parts = urlsplit(url)
        response = await self.http.post(
            parts.path + (f"?{parts.query}" if parts.query else ""), data=params, headers=headers
        )
        if response.status_code not in {200, 204}:
            raise SimulationError(
                f"the service refused {parts.path}: {response.status_code} {response.text[:200]}"
            )
        return response

    def _said(self, response: httpx.Response) -> str:
        # The service's own TwiML, the answer to a request we just made: not untrusted input.
        twiml = ET.fromstring(response.text)  # noqa: S314
        gather = twiml.find("Gather")
        self._gather_action = gather.get("action") if gather is not None else None
        return " ".join(say.text or "" for say in (gather if gather is not None else twiml).iter("Say"))

    async def ring(self) -> str:
        return self._said(await self._post(f"{self.public_url}{PREFIX}/voice", CallStatus="ringing"))

    async def say(self, text: str) -> str:
        if self._gather_action is None:
            raise SimulationError("the bot hung up: nothing listens any more")
        speech = {"SpeechResult": text, "Confidence": "0.9"}
        return self._said(await self._post(self._gather_action, CallStatus="in-progress", **speech))

    async def hang_up(self) -> str:
        await self._post(f"{self.public_url}{PREFIX}/status", CallStatus="completed", CallDuration="1")
        return "completed"
