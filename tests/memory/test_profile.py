"""One profile spec: a field added to it is asked for, kept, prompted with, and documented; an entry unfit
to keep is refused, with its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from callmemory.memory.profile import checked_profile, clean_profile, profile_keys
from callmemory.memory.unfit import Unfit

TESTS = Path(__file__).parent.parent


def test_a_field_added_to_the_spec_reaches_every_reader() -> None:
    assert "pets" not in profile_keys()

    ran = subprocess.run(
        [sys.executable, "-m", "support.profile_field_added"],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)

    assert seen["cleaned"] == {"name": "Ada", "pets": ["a cat", "7"]}
    assert "Name: Ada. Pets: a cat; 7." in seen["prompt"]
    assert '"pets" (the caller\'s pets)' in " ".join(seen["summariser"].split())  # however it wraps
    assert seen["api"] == ["name, open_issues, promises, preferences, pets"] * 2
    assert "`profile` (name, open_issues, promises, preferences, pets)" in seen["mcp"]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("profileListingImg_0f5c9d7e-\u2026.png", Unfit.FILE_NAME),
        ("https://example.org/orders", Unfit.FILE_NAME),
        ("Caller: my order never arrived", Unfit.ROLE_LABEL),
        ("The assistant said it would call back", Unfit.ROLE_LABEL),
        ("I'm sorry for any misunderstanding.", Unfit.APOLOGY),
        ("Sorry, I couldn't help but mention it", Unfit.APOLOGY),
    ],
)
def test_an_unfit_entry_is_refused_with_its_reason(entry: str, reason: Unfit) -> None:
    assert checked_profile({"promises": [entry, "Call back on Friday"]}) == (
        {"promises": ["Call back on Friday"]},
        (reason,),
    )


def test_notes_with_numbers_serials_e_mail_addresses_and_labels_of_their_own_are_kept() -> None:
    profile = {
        "open_issues": ["My order 48213 never arrived.", "Dishwasher DW-7731 leaks"],
        "preferences": [
            "Operating system: Windows 11",
            "Phone model: iPhone 15",
            "Replies to maria.lopez@example.com",
        ],
    }

    assert checked_profile(profile) == (profile, ())


def test_an_unfit_name_is_left_out() -> None:
    assert checked_profile({"name": "Assistant: Maria"}) == ({}, (Unfit.ROLE_LABEL,))


def test_a_stored_profile_read_again_loses_its_unfit_entries() -> None:
    assert clean_profile({"promises": ["I apologize for the confusion.", "Send a new router"]}) == {
        "promises": ["Send a new router"]
    }
