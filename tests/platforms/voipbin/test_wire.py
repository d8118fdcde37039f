"""VoIPBin's wire format: signatures, both time formats, zero UUIDs, omitted fields, fetch actions."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import pytest

from callmemory.core.errors import InvalidEvent, MalformedBody
from callmemory.core.events import Role
from callmemory.platforms.voipbin import examples as voipbin_examples
from callmemory.platforms.voipbin import wire as voipbin
from callmemory.platforms.voipbin.settings import VoipbinBot
from support.voipbin import AI_ID

SECRET = b"whsec-test-0123"
BODY = b'{"type":"call_hangup","data":{"id":"5371e9db-d035-4db6-a8d6-0994d33e744e"}}'
# Computed once by `printf '%s' "$BODY" | openssl dgst -sha256 -hmac whsec-test-0123`; pinned so that a
# change in how the body is fed to HMAC (re-serialised JSON, a stripped newline) cannot pass unnoticed.
PINNED = "sha256=833e7d9eedaabc2802617f55a4e97679dffbdc73a2a0af25dea7d2d7570fc400"


def test_signature_is_hmac_sha256_of_the_raw_body_in_hex() -> None:
    expected = hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()

    assert voipbin.signature(SECRET, BODY) == f"sha256={expected}"
    assert voipbin.signature(SECRET, BODY) == PINNED


def test_a_correct_signature_has_no_problem() -> None:
    assert voipbin.signature_problem(SECRET, BODY, PINNED) is None


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "missing"),
        (PINNED.removeprefix("sha256="), "not of the form"),
        ("sha256=" + "0" * 64, "does not match"),
        (voipbin.signature(b"another-secret", BODY), "does not match"),
    ],
)
def test_a_bad_signature_names_its_problem(header: str | None, why: str) -> None:
    problem = voipbin.signature_problem(SECRET, BODY, header)

    assert problem is not None
    assert why in problem


def test_a_signature_of_another_body_does_not_match() -> None:
    assert voipbin.signature_problem(SECRET, BODY + b" ", PINNED) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-04-11T00:23:55.026Z", datetime(2022, 4, 11, 0, 23, 55, 26000, tzinfo=UTC)),
        ("2022-04-11 00:23:53.636000", datetime(2022, 4, 11, 0, 23, 53, 636000, tzinfo=UTC)),
        ("2022-04-11T00:23:55.026123456Z", datetime(2022, 4, 11, 0, 23, 55, 26123, tzinfo=UTC)),
        ("2022-04-11T02:23:55+02:00", datetime(2022, 4, 11, 0, 23, 55, tzinfo=UTC)),
    ],
)
def test_both_time_formats_parse_to_utc(text: str, expected: datetime) -> None:
    assert voipbin.parse_time(text) == expected


@pytest.mark.parametrize("text", [None, "", "0001-01-01 00:00:08.991840", "yesterday"])
def test_unset_zero_and_unreadable_times_are_none(text: str | None) -> None:
    assert voipbin.parse_time(text) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" 15551234567", "+15551234567"), ("+15551234567", "+15551234567"), ("15551234567", "15551234567")],
)
def test_a_plus_turned_into_a_space_is_restored(raw: str, expected: str) -> None:
    assert voipbin.restore_plus(raw) == expected


def test_a_call_event_with_zero_uuids_and_omitted_fields_parses() -> None:
    body = {
        "type": "call_created",
        "data": {
            "id": "5371e9db-d035-4db6-a8d6-0994d33e744e",
            "activeflow_id": voipbin.ZERO_UUID,
            "master_call_id": voipbin.ZERO_UUID,
            "source": {"type": "tel", "target": "+15551234567"},
            "destination": {"type": "tel", "target": "+15559876543"},
            "direction": "incoming",
        },
    }

    event = voipbin.parse(json.dumps(body).encode())

    assert isinstance(event.data, voipbin.CallInfo)
    assert event.data.activeflow_id is None
    assert (event.data.caller, event.data.bot) == ("+15551234567", "+15559876543")
    assert event.data.hangup_reason is None


def test_an_outgoing_call_has_the_dialled_party_as_caller() -> None:
    info = voipbin.CallInfo.model_validate(
        {
            "id": "c",
            "direction": "outgoing",
            "source": {"target": "+15559876543"},
            "destination": {"target": "+15551234567"},
        }
    )

    assert (info.caller, info.bot) == ("+15551234567", "+15559876543")


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("incoming", ("+15559876543", "+15551234567")),
        ("outgoing", ("+15551234567", "+15559876543")),
        (None, ("+15559876543", "+15551234567")),
    ],
)
def test_the_fetch_url_names_the_bot_by_the_calls_direction(
    direction: str | None, expected: tuple[str, str]
) -> None:
    assert voipbin.fetch_parties("+15559876543", " 15551234567", direction) == expected


def test_transcripts_sort_by_where_they_were_said_not_by_when_they_were_made() -> None:
    def said(offset: str, created: str) -> str | None:
        data = {"id": "t", "transcribe_id": "tr", "tm_transcript": offset, "tm_create": created}
        return voipbin.Transcript.model_validate(data).spoken

    early = said("0001-01-01 00:00:08.991840", "2024-04-04 07:16:30.000000")
    late = said("0001-01-01 00:01:02.000000", "2024-04-04 07:16:10.000000")
    tie_first = said("0001-01-01 00:01:02.000000", "2024-04-04 07:16:11.000000")

    assert sorted([tie_first, late, early], key=str) == [early, late, tie_first]


def test_a_transcript_without_any_time_has_no_spoken_position() -> None:
    assert voipbin.Transcript.model_validate({"id": "t", "transcribe_id": "tr"}).spoken is None


def test_a_transcript_in_the_documented_shape_parses() -> None:
    body = {
        "type": "transcript_created",
        "data": {
            "id": "9d59e7f0-0000-4000-8000-000000000002",
            "customer_id": "5e4a0680-804e-11ec-8477-2fea5968d85b",
            "transcribe_id": "8c5a9e2a-0000-4000-8000-000000000003",
            "direction": "in",
            "message": "Hello, this is transcribe test call.",
            "tm_transcript": "0001-01-01 00:00:08.991840",
            "tm_create": "2024-04-04 07:15:59.233415",
        },
    }

    event = voipbin.parse(json.dumps(body).encode())

    assert isinstance(event.data, voipbin.Transcript)
    assert event.data.role is Role.CALLER
    assert event.data.tm_create == datetime(2024, 4, 4, 7, 15, 59, 233415, tzinfo=UTC)
    assert event.key == "transcript_created:9d59e7f0-0000-4000-8000-000000000002:"


def test_the_dedup_key_is_type_id_and_update_time() -> None:
    body = {"type": "call_progressing", "data": {"id": "c-1", "tm_update": "2022-04-11T00:23:55.026Z"}}

    assert voipbin.parse(json.dumps(body).encode()).key == "call_progressing:c-1:2022-04-11T00:23:55.026Z"


def test_an_unknown_type_parses_without_data() -> None:
    event = voipbin.parse(b'{"type": "recording_started", "data": {"id": "r-1"}}')

    assert (event.type, event.data) == ("recording_started", None)


def test_a_known_type_without_its_id_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as error:
        voipbin.parse(b'{"type": "transcript_created", "data": {"transcribe_id": "t"}}')

    assert error.value.field == "data.id"


@pytest.mark.parametrize("body", [b"{", b"[]", b"null"])
def test_a_body_that_is_not_a_json_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        voipbin.parse(body)


def test_an_aimessage_of_the_system_is_heard_by_nobody() -> None:
    system = voipbin.AIMessage.model_validate({"id": "m", "role": "system", "content": "be nice"})
    user = voipbin.AIMessage.model_validate({"id": "m", "role": "user", "content": "hi"})

    assert (system.speaker, user.speaker) == (None, Role.CALLER)


def _ids_are_fresh_uuids(actions: list[dict[str, object]]) -> None:
    ids = [str(a["id"]) for a in actions]
    assert len(set(ids)) == len(ids)
    for value in ids:
        uuid.UUID(value)


def test_managed_ai_fetch_sets_the_brief_greets_then_hands_over_to_the_ai() -> None:
    bot = VoipbinBot(mode="managed_ai", ai_id=AI_ID, language="de-DE", voice_id="de-DE-Standard-A")

    actions = voipbin.fetch_actions(bot, "Hallo!", "brief", sleep_ms=1000)

    assert [a["type"] for a in actions] == ["variable_set", "talk", "ai_talk"]
    assert actions[0]["option"] == {"key": "caller.memory", "value": "brief"}
    assert actions[1]["option"] == {
        "text": "Hallo!",
        "language": "de-DE",
        "provider": "gcp",
        "voice_id": "de-DE-Standard-A",
    }
    assert actions[2]["option"] == {"assistance_type": "ai", "assistance_id": AI_ID}
    _ids_are_fresh_uuids(actions)


def test_own_llm_fetch_greets_transcribes_the_caller_and_holds_the_call() -> None:
    actions = voipbin.fetch_actions(VoipbinBot(), "Hello!", "brief", sleep_ms=60_000)

    assert [a["type"] for a in actions] == ["talk", "transcribe_start", "sleep"]
    assert actions[1]["option"] == {"language": "en-US", "direction": "in"}
    assert actions[2]["option"] == {"duration": 60_000}
    _ids_are_fresh_uuids(actions)


@pytest.mark.parametrize("name", sorted(voipbin_examples.EVENT_EXAMPLES))
def test_every_documented_example_event_parses(name: str) -> None:
    body = json.dumps(voipbin_examples.EVENT_EXAMPLES[name]["value"]).encode()

    assert voipbin.parse(body).data is not None
