"""What the summary model wrote that is not fit to keep: refused in a prepared greeting and in a profile.

A small model, asked for a greeting or a profile, writes what it has seen instead: the transcript with its
speaker labels, the names of files from its training data ("profileListingImg_0f5c9d7e.png"), and its own
apologies ("I'm sorry for any misunderstanding"). None of these is about the caller. Each rule here is
about the form of the text, not a list of sentences seen, so that it catches the next model's wording too.
The reasons are metric labels: never the text, which may hold what a caller said.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class Unfit(StrEnum):
    """Why a prepared greeting or a profile entry was refused."""

    UNSAYABLE = "unsayable"  # nothing sayable left once shaped (a greeting of placeholders, emoji)
    ROLE_LABEL = "role_label"  # "Caller: ...", "Assistant: ...", "The caller said ...": a transcript retold
    FILE_NAME = "file_name"  # a file name, a path, a URL or a machine identifier
    TRANSCRIPT_ECHO = "transcript_echo"  # a long run of the caller's own words from the call
    APOLOGY = "apology"  # the model apologising in its own voice
    NOT_A_GREETING = "not_a_greeting"  # a greeting whose first sentence neither greets nor names the caller
    TOO_MANY_SENTENCES = "too_many_sentences"
    TOO_LONG = "too_long"


# The parties of a transcript, as the summariser's prompt and the models' own chat formats name them. Not
# "system", "model" or "agent": "Operating system: Windows" and "Phone model: X" are fair profile notes.
_PARTIES: Final = r"(?:caller|assistant|user|bot|customer|human|ai)"
_ROLE_LABEL: Final = re.compile(
    rf"(?:^|(?<=[\s\"'(]))(?:the\s+)?{_PARTIES}\s*:"  # a speaker's label: "Caller:", "Assistant:"
    rf"|\bthe\s+{_PARTIES}\s+(?:said|says|asked|asks|told|mentioned|stated|replied|wrote|writes)\b",
    re.IGNORECASE,
)
# No spoken sentence holds these. Order numbers ("48213") and serials ("DW-7731") are kept: no dot-suffix,
# no underscore, no slash, and a hex run must mix letters and digits.
_FILE_NAME: Final = re.compile(
    r"\b(?:https?|ftp)://|\bwww\."  # a URL
    # name.ext, a domain; but not in an e-mail address, a fair note of how the caller wants to be reached
    r"|(?<!@)\b\w[\w-]*\.[a-z][a-z0-9]{1,4}\b(?![\w.-]*@)"
    r"|(?<!\S)[~.]*/[\w.-]+/"  # a path: "/home/...", "~/..."
    r"|\b[A-Za-z]:\\"  # a Windows path
    r"|[^\W_]_[^\W_]"  # snake_case and generated names: "profileListingImg_0f5c"
    r"|\b[a-z]+(?:[A-Z][a-z0-9]+){2,}\b"  # camelCase with two humps ("iPhone" has one)
    r"|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b"  # a hash or an id
)
# In its own voice: "I'm sorry", "I apologise", "my apologies", or a sentence that opens with "Sorry".
# "We're sorry your parcel was late" is the business speaking to the caller, and is kept.
_APOLOGY: Final = re.compile(
    r"\bI(?:'m|\u2019m|\s+am)\s+(?:\w+\s+)?sorry\b"
    r"|\bI\s+(?:\w+\s+)?apologi[sz]e\b"
    r"|\bmy\s+apologies\b"
    r"|(?:^|[.!?]\s+)sorry\b",
    re.IGNORECASE,
)


def unfit_text(text: str) -> Unfit | None:
    """Why `text` is not fit to keep as something the model learnt or will say; None if it is."""
    if _FILE_NAME.search(text):
        return Unfit.FILE_NAME
    if _ROLE_LABEL.search(text):
        return Unfit.ROLE_LABEL
    if _APOLOGY.search(text):
        return Unfit.APOLOGY
    return None
