"""The one rule of every platform for caller IDs that say "no number"."""

from __future__ import annotations

import pytest

from callmemory.events import CallRef
from callmemory.memory.keys import NumberPolicy
from callmemory.memory.withheld import is_withheld, stand_in_number


@pytest.mark.parametrize(
    "raw",
    [
        "anonymous",
        "Anonymous",
        "unknown",
        "RESTRICTED",
        "Unavailable",
        "private",
        "",
        "  ",
        None,
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


def test_a_stand_in_is_a_valid_number_of_one_call_alone() -> None:
    one, other = CallRef("twilio", "CA1"), CallRef("twilio", "CA2")

    assert stand_in_number(one) == stand_in_number(one)
    assert stand_in_number(one) != stand_in_number(other)
    assert NumberPolicy(strict=True).normalise(stand_in_number(one), field="from") == stand_in_number(one)
