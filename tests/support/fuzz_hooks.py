"""schemathesis hooks for tests/test_schema_fuzz.py (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

# The schema's `format: phone` stands for what no pattern can say: that the digits make a possible
# number. Schema-valid cases draw from numbers that do, written in each of the accepted ways.
POSSIBLE_NUMBERS = ["+14155551234", "+14155550000", "+1 (415) 555-0001", "415-555-1235", "+1.415.555.1236"]

schemathesis.openapi.format("phone", st.sampled_from([*POSSIBLE_NUMBERS, "+442071838750"]))
