"""One profile spec: a field added to it is asked for, kept, prompted with, and documented."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from callmemory.memory.profile import profile_keys

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
