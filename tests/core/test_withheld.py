"""The one rule of every platform for caller IDs that say "no number"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from callmemory.core.withheld import is_withheld
from callmemory.settings import Settings
from support.phone import Phone


@pytest.mark.parametrize(
    "raw",
    [
        "anonymous",
        "Anonymous",
        "unknown",
        "RESTRICTED",
        "Unavailable",
        "private",
        "+266696687",
        "+7378742833",
        "+8656696",
        "+86282452253",
        "+7748283",
    ],
)
def test_words_and_their_keypad_spellings_are_withheld(raw: str | None) -> None:
    assert is_withheld(raw)


@pytest.mark.parametrize("raw", ["+14155551234", "+442079460000", "4155551234", "+2666966870"])
def test_real_numbers_are_not_withheld(raw: str) -> None:
    assert not is_withheld(raw)


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_a_blank_caller_id_is_not_withheld_but_missing(raw: str | None) -> None:
    assert not is_withheld(raw)


async def test_a_withheld_seed_caller_is_remembered_under_each_call_alone(
    phone: Phone, sql: Callable[..., Any], settings: Settings
) -> None:
    phone.caller = "+266696687"  # ANONYMOUS, spelt on a keypad: it looks like a number
    await phone.call("My order 4417 never arrived.")

    _, second = await phone.ring("withheld-2")
    await phone.hang_up("withheld-2")

    assert second == settings.greeting_new
    rows = await sql("SELECT count(*) AS n, count(caller_number) AS numbers FROM callers")
    assert (rows[0].n, rows[0].numbers) == (2, 0)  # one caller per call, no number kept


async def test_every_event_of_a_withheld_callers_call_finds_it(phone: Phone, sql: Callable[..., Any]) -> None:
    phone.caller = "+266696687"
    await phone.ring("withheld-1")

    answer = await phone.say("withheld-1", "Hello?")
    ended = await phone.hang_up("withheld-1")

    assert answer == "You said: Hello?"
    assert ended == {"status": "archived"}
