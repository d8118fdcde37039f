"""Callers are keyed by (bot, caller) in E.164, hashed under a secret."""

from __future__ import annotations

import pytest

from callmemory.core.errors import InvalidPhoneNumber
from callmemory.core.identity import CallerHasher, NumberPolicy


@pytest.mark.parametrize(
    "raw", ["+14155551234", "+1 (415) 555-1234", "415-555-1234", "4155551234", "+1.415.555.1234"]
)
def test_numbers_are_normalised_to_e164(raw: str) -> None:
    assert NumberPolicy(default_region="US").normalise(raw, field="from") == "+14155551234"


def test_a_number_without_prefix_is_read_in_the_default_region() -> None:
    assert NumberPolicy(default_region="GB").normalise("020 7183 8750", field="from") == "+442071838750"


def test_strict_mode_refuses_numbers_that_are_possible_but_unassigned() -> None:
    assert NumberPolicy(strict=False).normalise("+15551234567", field="from") == "+15551234567"
    with pytest.raises(InvalidPhoneNumber):
        NumberPolicy(strict=True).normalise("+15551234567", field="from")


@pytest.mark.parametrize("raw", ["", "abc", "+1234", "+999999999999999999"])
def test_non_numbers_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as refused:
        NumberPolicy().normalise(raw, field="to")
    assert refused.value.field == "to"


@pytest.mark.parametrize(
    "raw",
    ["tel:+14155551234", "+1 415 555 1234 ext. 12", "1-800-FLOWERS", "+1415555\x001234", "+14155551234\n"],
)
def test_a_number_written_with_other_than_digits_separators_and_a_leading_plus_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as refused:
        NumberPolicy().normalise(raw, field="from")
    assert "may hold only digits" in refused.value.message


def test_the_caller_hash_depends_on_the_bot() -> None:
    hasher = CallerHasher(b"secret")
    assert hasher.caller_id("+14155550000", "+14155551234") != hasher.caller_id(
        "+14155550001", "+14155551234"
    )


def test_the_caller_hash_is_stable_and_depends_on_the_secret() -> None:
    first = CallerHasher(b"secret").caller_id("+14155550000", "+14155551234")
    assert first == CallerHasher(b"secret").caller_id("+14155550000", "+14155551234")
    assert first != CallerHasher(b"other").caller_id("+14155550000", "+14155551234")
    assert len(first.caller_hash) == 64
    assert "4155551234" not in first.caller_hash
