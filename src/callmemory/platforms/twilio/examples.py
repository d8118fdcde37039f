"""OpenAPI examples of Twilio's requests (form fields, shown as objects) and of our TwiML answers."""

from __future__ import annotations

from typing import Any, Final

from callmemory.core.events import Reply
from callmemory.platforms.twilio.settings import TwilioSettings
from callmemory.platforms.twilio.wire import twiml

_CALL: Final[dict[str, str]] = {
    "CallSid": "CA5f0c9a1e2b3d4c5e6f708192a3b4c5d6",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+14155551234",
    "To": "+14155550000",
    "CallStatus": "in-progress",
    "ApiVersion": "2010-04-01",
    "Direction": "inbound",
}


def _form(schema_fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(schema_fields),
        "properties": {name: {"type": "string"} for name in schema_fields},
        "additionalProperties": {"type": "string"},
    }


def request_body(required: tuple[str, ...], examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _form(required), "examples": examples}
            },
        }
    }


def twiml_answer(description: str, examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"text/xml": {"schema": {"type": "string"}, "examples": examples}},
    }


VOICE_REQUESTS: Final = {
    "incoming call": {
        "summary": "A call reaches the Twilio number",
        "value": {**_CALL, "CallStatus": "ringing"},
    },
    "withheld caller ID": {
        "summary": "The caller hid their number: answered, remembered under this call alone",
        "value": {**_CALL, "From": "+266696687", "CallStatus": "ringing"},
    },
}
GATHER_REQUESTS: Final = {
    "speech": {
        "summary": "What the caller said, recognised by Twilio",
        "value": {**_CALL, "SpeechResult": "My order 4417 never arrived.", "Confidence": "0.92"},
    },
}
STATUS_REQUESTS: Final = {
    "completed": {
        "summary": "The call ended",
        "value": {**_CALL, "CallStatus": "completed", "CallDuration": "42"},
    },
    "ringing": {"summary": "A progress event (ignored)", "value": {**_CALL, "CallStatus": "ringing"}},
}

_ACTION: Final = "https://memory.example.com/twilio/gather?turn={turn}"


def _turn(text: str, turn: int) -> str:
    # Rendered by the adapter itself, with the default settings, so the examples show what it answers.
    defaults = TwilioSettings()
    return twiml(
        Reply(say=text),
        _ACTION.format(turn=turn),
        voice=defaults.twilio_voice,
        language=defaults.twilio_language,
        goodbye=defaults.twilio_goodbye,
    )


GREETINGS: Final = {
    "new caller": {"value": _turn("Hello! How can I help you today?", 1)},
    "returning caller": {
        "value": _turn(
            'Welcome back! Last time you told me: "My order 4417 never arrived". Is that what you are '
            "calling about, or is there something new?",
            1,
        )
    },
}
ANSWERS: Final = {
    "answer": {"value": _turn("I'm sorry about that. Let me check order 4417 for you.", 2)},
}
