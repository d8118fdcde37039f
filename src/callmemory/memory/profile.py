"""The caller profile the summary job keeps: which fields, what each holds, how the prompt names it.

The one place a field is added. The summariser asks the LLM for every field here, `clean_profile`
keeps them, the prompt shows them under their labels, and the integrator API and the MCP tools list
their keys. Profiles are stored as JSONB, so a new field needs no migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from callmemory.memory.unfit import Unfit, unfit_text

# The LLM's output is untrusted: these bound what one summary can add to every later prompt.
_MAX_TEXT_CHARS: Final = 100
_MAX_ITEM_CHARS: Final = 300
_MAX_ITEMS: Final = 10


@dataclass(frozen=True, slots=True)
class ProfileField:
    key: str  # in the stored profile, the summariser's answer and the API's
    label: str  # how the bot's LLM is told it in the prompt
    description: str = ""  # said to the summariser when the key alone does not make it clear
    many: bool = True  # a list of short strings; False: one short string


OPEN_ISSUES: Final = ProfileField("open_issues", "Open issues")  # the stub LLM fills it in

PROFILE: Final[tuple[ProfileField, ...]] = (
    ProfileField("name", "Name", many=False),
    OPEN_ISSUES,
    ProfileField("promises", "Promises you made", "promises the assistant made"),
    ProfileField("preferences", "Preferences"),
)


def profile_keys() -> str:
    """The keys as documentation lists them: "name, open_issues, ..."."""
    return ", ".join(field.key for field in PROFILE)


def _items(raw: object, refused: list[Unfit]) -> list[str]:
    if not isinstance(raw, list):
        return []
    kept = [str(i).strip() for i in raw if isinstance(i, str | int | float)]
    return [item[:_MAX_ITEM_CHARS] for item in _fit(kept, refused)[:_MAX_ITEMS]]


def _fit(entries: list[str], refused: list[Unfit]) -> list[str]:
    """The entries fit to keep (blank ones are not, uncounted); why each unfit one is not, appended to
    `refused`."""
    fit = []
    for entry in entries:
        if not entry:
            continue
        if (reason := unfit_text(entry)) is None:
            fit.append(entry)
        else:
            refused.append(reason)
    return fit


def checked_profile(raw: object) -> tuple[dict[str, Any], tuple[Unfit, ...]]:
    """Only the known profile fields, with the expected shapes and fit entries; and why each entry left
    out as unfit was (memory/unfit.py), in the order they were met."""
    if not isinstance(raw, Mapping):
        return {}, ()
    profile: dict[str, Any] = {}
    refused: list[Unfit] = []
    for field in PROFILE:
        value = raw.get(field.key)
        if field.many and (items := _items(value, refused)):
            profile[field.key] = items
        elif not field.many and isinstance(value, str) and (text := _fit([value.strip()], refused)):
            profile[field.key] = text[0][:_MAX_TEXT_CHARS]
    return profile, tuple(refused)


def clean_profile(raw: object) -> dict[str, Any]:
    """Keep only the known profile fields, with the expected shapes. A profile stored before an entry was
    refused loses it here too, when it is read."""
    return checked_profile(raw)[0]
