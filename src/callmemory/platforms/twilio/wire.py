"""Twilio's wire format: form fields in, core call events out; a core `Reply` back out as TwiML.

Twilio names the caller `From`, the bot's number `To` and the call `CallSid` on every request. It gives a
speech result no id of its own, so each `<Gather>` we hand out carries its turn number in its action URL
(`/twilio/gather?turn=N`, signed by Twilio with the rest of the URL): (CallSid, turn) is the identity
of a speech result, and a redelivery of it is answered with the first delivery's answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from twilio.twiml.voice_response import VoiceResponse

from callmemory.core.errors import InvalidEvent
from callmemory.core.events import CallEnded, CallerSpoke, CallRef, CallStarted, Reply
from callmemory.core.trust import Trust

PLATFORM: Final = "twilio"

# `completed` is what Twilio reports for every ended call; the others arrive from calls placed through
# its REST API or <Dial>, where the caller never got through. Earlier statuses (ringing, in-progress...)
# say nothing to archive.
FINAL_STATUSES: Final = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

# The one `StirVerstat` that vouches for the caller: Twilio checked the SHAKEN PASSporT, and the
# originating carrier attested (A) that it knows the caller and that they may use the number. Twilio's
# own SDKs call a call verified on this value alone. Not `...-A-Diverted` (the certificate checked is
# the forwarding provider's, which attests the diversion, not the caller's right to the number), not
# `...-A-Passthrough` (a PASSporT passed on by a provider we cannot name), not B or C (the carrier
# does not know that the caller may use the number), not a failure, and not its absence (no PASSporT:
# the call crossed a network without SHAKEN, outside the US for one) — see docs/caller-trust.md.
VERIFIED_STIR_VERSTAT: Final = "TN-Validation-Passed-A"

_CALL_SID = re.compile(r"^[!-~]{1,200}$")  # "CA" + 32 hex in practice; the id becomes part of Redis keys

Form = Mapping[str, str]


def _field(form: Form, name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise InvalidEvent(f"`{name}` is missing", field=name)
    return value


def call_ref(form: Form) -> CallRef:
    sid = _field(form, "CallSid")
    if not _CALL_SID.match(sid):
        raise InvalidEvent("`CallSid` is not a call id", field="CallSid")
    return CallRef(PLATFORM, sid)


def call_started(form: Form) -> CallStarted:
    # A withheld caller ID (`anonymous`, `+266696687`...) goes to the core as it is: the core keeps such
    # a caller under the call alone (core/withheld.py), on every platform alike.
    return CallStarted(call_ref(form), form.get("From", ""), _field(form, "To"), trust_of(form))


def trust_of(form: Form) -> Trust:
    """Whether Twilio vouches for the caller's number (see VERIFIED_STIR_VERSTAT)."""
    return Trust.VERIFIED if form.get("StirVerstat") == VERIFIED_STIR_VERSTAT else Trust.UNVERIFIED


def caller_spoke(form: Form, turn: int) -> CallerSpoke:
    call = call_ref(form)
    return CallerSpoke(
        call,
        form.get("From", ""),
        form.get("SpeechResult", ""),
        event_key=f"turn:{turn}",
        bot_number=form.get("To") or None,
    )


def call_ended(form: Form) -> CallEnded | None:
    """The call's end, or None for a status that is not one."""
    status = _field(form, "CallStatus")
    if status not in FINAL_STATUSES:
        return None
    call = call_ref(form)
    return CallEnded(call, form.get("From", ""), reason=status)


def heard_nothing(form: Form) -> bool:
    return not form.get("SpeechResult", "").strip()


def twiml(reply: Reply, next_turn: str, *, voice: str | None, language: str, goodbye: str) -> str:
    """`reply` said inside the next `<Gather>`, so the caller can talk over it; `next_turn` is its action.

    A caller who stays silent falls through the `<Gather>` (Twilio calls no action then): the goodbye
    line and a hang-up follow, rather than a call that loops in silence.
    """
    response = VoiceResponse()
    if reply.then == "hangup":
        if reply.say:
            response.say(reply.say, voice=voice, language=language)
        response.hangup()
        return str(response)
    gather = response.gather(
        input="speech", action=next_turn, method="POST", speech_timeout="auto", language=language
    )
    if reply.say:
        gather.say(reply.say, voice=voice, language=language)
    response.say(goodbye, voice=voice, language=language)
    response.hangup()
    return str(response)
