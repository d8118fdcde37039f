"""Plays Twilio Programmable Voice against the app under test: form posts signed by Twilio's own
validator over the public URL Twilio calls, TwiML read back, each `<Gather>`'s action followed."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

TOKEN = "twilio-auth-token-of-the-tests-0123"
PUBLIC_URL = "https://memory.example.com"  # the app itself is reached at http://callmemory.test
BOT = "+14155550000"
CALLER = "+14155551234"

_sids = itertools.count(1)


@dataclass(frozen=True)
class Delivery:
    """One request as Twilio sends it; sending it again is a redelivery."""

    url: str  # the URL Twilio requests, which it signs
    params: dict[str, str]
    signature: str | None


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> Delivery:
    return Delivery(url, params, RequestValidator(token).compute_signature(url, params))


@dataclass(frozen=True)
class Twiml:
    status: int
    content_type: str
    root: ET.Element

    @property
    def gather(self) -> ET.Element:
        found = self.root.find("Gather")
        assert found is not None, ET.tostring(self.root)
        return found

    @property
    def said(self) -> str:
        """What the bot says before listening: the `<Say>` inside the `<Gather>`."""
        return " ".join(say.text or "" for say in self.gather.iter("Say"))


async def deliver(http: httpx.AsyncClient, delivery: Delivery) -> httpx.Response:
    parts = urlsplit(delivery.url)
    headers = {"X-Twilio-Signature": delivery.signature} if delivery.signature is not None else {}
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return await http.post(target, data=delivery.params, headers=headers)


def twiml(response: httpx.Response) -> Twiml:
    assert response.status_code == 200, response.text
    return Twiml(response.status_code, response.headers["content-type"], ET.fromstring(response.text))


@dataclass
class TwilioCall:
    http: httpx.AsyncClient
    caller: str = CALLER
    bot: str = BOT
    sid: str = field(default_factory=lambda: f"CA{next(_sids):032x}")
    action: str | None = None  # the last answer's <Gather> action: where the next speech result goes
    # What Twilio says of the caller ID's SHAKEN PASSporT; sent (and signed) on the incoming call only,
    # and only when the call had one, as Twilio does.
    stir_verstat: str | None = None

    def params(self, **fields: str) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "AccountSid": "AC" + "f" * 32,
            "From": self.caller,
            "To": self.bot,
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
            "CallStatus": "in-progress",
            **fields,
        }

    def incoming(self) -> Delivery:
        verstat = {"StirVerstat": self.stir_verstat} if self.stir_verstat is not None else {}
        return sign(f"{PUBLIC_URL}/twilio/voice", self.params(CallStatus="ringing", **verstat))

    def speech(self, text: str) -> Delivery:
        assert self.action is not None, "no <Gather> to answer: ring first"
        return sign(self.action, self.params(SpeechResult=text, Confidence="0.91"))

    def status(self, status: str = "completed") -> Delivery:
        return sign(f"{PUBLIC_URL}/twilio/status", self.params(CallStatus=status, CallDuration="30"))

    async def send(self, delivery: Delivery) -> Twiml:
        answer = twiml(await deliver(self.http, delivery))
        self.action = answer.gather.get("action")
        return answer

    async def ring(self) -> str:
        return (await self.send(self.incoming())).said

    async def say(self, text: str) -> str:
        return (await self.send(self.speech(text))).said

    async def hang_up(self, status: str = "completed") -> httpx.Response:
        response = await deliver(self.http, self.status(status))
        assert response.status_code == 204, response.text
        return response

    async def whole(self, *speech: str) -> list[str]:
        """Ring, say each line, hang up: everything the bot said."""
        heard = [await self.ring()]
        for line in speech:
            heard.append(await self.say(line))
        await self.hang_up()
        return heard


async def answered(http: httpx.AsyncClient, caller: str = CALLER) -> TwilioCall:
    """A call that has been greeted: its first `<Gather>` waits for speech."""
    call = TwilioCall(http, caller=caller)
    await call.ring()
    return call
