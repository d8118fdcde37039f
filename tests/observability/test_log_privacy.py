"""The logs of whole calls, captured at DEBUG through `serve`'s own logging configuration, hold no
phone number and no word of what was said, yet name the request, the call and the caller's hash."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from callmemory.observability.logs import TextFormatter, log_config
from callmemory.settings import Settings
from support.app import summarise_queued
from support.llm import FakeLLM
from support.phone import Phone
from support.voipbin import ACCESS_KEY, CALLER, ScriptedCall, Voipbin
from support.waiting import eventually

SEED_CALLER = "+14155551234"
SEED_SPEECH = ("My parcel to Zanzibar never arrived.", "The tracking code was QX-4471.")
VOIPBIN_SPEECH = "Please cancel my saxophone lessons."


def spellings(e164: str) -> list[str]:
    """How a number may appear in a log line: E.164, digits only, national digits, and written forms."""
    digits = e164.lstrip("+")
    national = digits[1:]  # the NANP numbers of these tests: country code 1
    return [
        e164,
        digits,
        national,
        f"({national[:3]}) {national[3:6]}-{national[6:]}",
        f"{national[:3]}-{national[3:6]}-{national[6:]}",
    ]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """`serve`'s logging configuration at DEBUG, written to a buffer; the root logger at DEBUG too, so
    every library not deliberately held back is captured. Restored afterwards."""
    stream = io.StringIO()
    config = log_config("debug", stream=stream)
    names = [None, *config["loggers"]]
    saved = {
        name: (lg.level, lg.handlers[:], lg.propagate, lg.filters[:], lg.disabled)
        for name in names
        for lg in [logging.getLogger(name)]
    }
    logging.config.dictConfig(config)
    logging.getLogger().setLevel(logging.DEBUG)
    yield stream
    for name, (level, handlers, propagate, filters, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.filters[:] = filters
        lg.disabled = disabled


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def leaks(stream: io.StringIO, secrets: list[str]) -> list[str]:
    text = stream.getvalue()
    # "[number]" is what the formatter's last-resort mask leaves: code that tried to log a number.
    return [secret for secret in [*secrets, "[number]"] if secret.lower() in text.lower()]


async def test_a_seed_call_logs_no_number_and_no_speech(
    log_lines: io.StringIO, client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    phone = Phone(client, caller=SEED_CALLER)
    call_id, heard = await phone.call(*SEED_SPEECH)
    await phone.call("Is there any news?")  # a returning caller: memory, greeting with the topic
    await phone.send(
        {"type": "call.speech_recognized", "call_id": call_id, "from": SEED_CALLER, "speech": "x"}
    )

    lines = lines_of(log_lines)

    assert leaks(log_lines, [*spellings(SEED_CALLER), *SEED_SPEECH, *heard[1:]]) == []
    about_the_call = [line for line in lines if line.get("call_id") == call_id]
    assert about_the_call, "the call was logged, by id"
    assert all("request_id" in line for line in about_the_call)
    assert {len(line["caller"]) for line in about_the_call if "caller" in line} == {12}
    assert {"time", "level", "logger", "message"} <= set(lines[0])


async def test_a_voipbin_call_logs_no_number_no_token_no_access_key_and_no_speech(
    log_lines: io.StringIO, voipbin: Voipbin, llm: FakeLLM
) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)
    await voipbin.deliver_all([call.transcribe_created(), call.transcript(VOIPBIN_SPEECH)])

    async def answered() -> bool:
        return bool(voipbin.api.said(call.call_id))

    await eventually(answered)
    await voipbin.deliver_all([call.hangup()])
    await voipbin.fetch(ScriptedCall(), token="wrong-token")  # refused: logged, without the URL

    said = voipbin.api.said(call.call_id)
    assert leaks(log_lines, [*spellings(CALLER), VOIPBIN_SPEECH, *said, "fetch-token", ACCESS_KEY]) == []
    assert any(line.get("call_id") == call.call_id for line in lines_of(log_lines))


def test_the_access_log_shows_no_caller_number_in_an_integrator_api_path(log_lines: io.StringIO) -> None:
    path = "/v1/bots/%2B14155550000/callers/%2B14155551234/calls?limit=5"
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.9:5123", "GET", path, "1.1", 200
    )

    [line] = lines_of(log_lines)

    assert "/v1/bots/%2B14155550000/callers/***/calls?limit=5" in line["message"]


def test_the_access_log_shows_no_fetch_token_and_no_caller_number(log_lines: io.StringIO) -> None:
    # What uvicorn's access logger is handed for a VoIPBin fetch (client, method, path, version, status).
    path = f"/voipbin/fetch/fetch-token-4567/+15559876543/{CALLER}?x=1"
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.9:5123", "GET", path, "1.1", 200
    )

    [line] = lines_of(log_lines)

    assert line["message"] == '10.0.0.9:5123 - "GET /voipbin/fetch/***/***/***?x=1 HTTP/1.1" 200'


def test_an_exception_is_logged_as_its_types_and_frames_not_its_message(log_lines: io.StringIO) -> None:
    try:
        try:
            raise ValueError(f"caller {SEED_CALLER} said: {SEED_SPEECH[0]}")
        except ValueError as inner:
            raise RuntimeError(SEED_SPEECH[1]) from inner
    except RuntimeError:
        logging.getLogger("callmemory.test").exception("the pass failed")

    [line] = lines_of(log_lines)

    assert line["exception"] == "RuntimeError <- ValueError"
    assert "test_log_privacy.py" in line["traceback"]
    assert leaks(log_lines, [*spellings(SEED_CALLER), *SEED_SPEECH]) == []


async def test_a_summary_jobs_lines_name_its_call(
    log_lines: io.StringIO, phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    call_id, _ = await phone.call(*SEED_SPEECH)
    llm.status = 500
    await summarise_queued(settings)

    failed = [line for line in lines_of(log_lines) if line["logger"] == "callmemory.summaries.worker"]

    assert [line.get("call_id") for line in failed] == [call_id]
    assert leaks(log_lines, [*spellings(phone.caller), *SEED_SPEECH]) == []


def test_the_text_format_keeps_the_same_rules() -> None:
    try:
        raise ValueError(SEED_SPEECH[0])
    except ValueError:
        failure = sys.exc_info()
    record = logging.getLogger("callmemory.test").makeRecord(
        "callmemory.test", logging.ERROR, __file__, 1, "caller %s", (SEED_CALLER,), failure
    )
    record.exc_text = logging.Formatter().formatException(failure)  # as another handler caches it

    text = TextFormatter().format(record)

    assert "caller [number]" in text
    assert "ValueError" in text
    assert SEED_SPEECH[0] not in text
