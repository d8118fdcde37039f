"""The configuration page's tables, generated from the settings models so they cannot drift.

    python -m callmemory.settings_doc                                print the tables
    python -m callmemory.settings_doc --write docs/configuration.md  replace them there, between the markers

tests/test_settings_doc.py fails whenever docs/configuration.md and the models disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import ApiKey, Settings, env_names

START: Final = (
    "<!-- settings-table:start: python -m callmemory.settings_doc --write docs/configuration.md -->"
)
END: Final = "<!-- settings-table:end -->"

_LONGEST_DEFAULT: Final = 60  # longer text defaults are cut: the table is for finding a setting


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f" ({seconds // size:g} {unit})"
    return ""


def shown_default(name: str, field: FieldInfo) -> str:
    """The default as a table cell: code, or a word when there is no value."""
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    suffix = ""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str):
        cut = value if len(value) <= _LONGEST_DEFAULT else value[: _LONGEST_DEFAULT - 1].rstrip() + "…"
        text = f'"{cut}"'
    elif isinstance(value, list | dict):
        text = json.dumps(value)
    else:
        text = str(value)
        if name.endswith("_s"):
            suffix = _duration(value)
        elif name.endswith("_ms"):
            suffix = _duration(value / 1000)
    return f"`{text}`{suffix}"


def _cell(text: str) -> str:
    # Outside code spans a `<t>` would be taken for an HTML tag, and vanish from the rendered page.
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    return "`".join(part if index % 2 else part.replace("<", "&lt;") for index, part in enumerate(parts))


def settings_table() -> str:
    lines = ["| environment variable | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        names = " or ".join(f"`{n}`" for n in env_names(name, field))
        lines.append(f"| {names} | {_cell(shown_default(name, field))} | {_cell(field.description or '')} |")
    return "\n".join(lines)


def nested_table(model: type[BaseModel]) -> str:
    lines = ["| key | default | what it does |", "| --- | --- | --- |"]
    for name, field in model.model_fields.items():
        lines.append(f"| `{name}` | {_cell(shown_default(name, field))} | {_cell(field.description or '')} |")
    return "\n".join(lines)


def tables() -> str:
    """Everything between the page's markers."""
    return "\n\n".join(
        [
            settings_table(),
            "Each entry of `CALLMEMORY_API_KEYS` (a JSON list):",
            nested_table(ApiKey),
            "Each value of `CALLMEMORY_VOIPBIN_BOTS` (a JSON object keyed by the bot's E.164 number):",
            nested_table(VoipbinBot),
        ]
    )


def section_of(page: str) -> str | None:
    """The generated part of a page, or None when its markers are missing."""
    _, start, rest = page.partition(START)
    body, end, _ = rest.partition(END)
    return body.strip("\n") if start and end else None


def replaced(page: str) -> str:
    if section_of(page) is None:
        raise ValueError(f"the page has no {START} ... {END} markers")
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{tables()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print or write the configuration page's tables.")
    parser.add_argument("--write", type=Path, metavar="PAGE", help="replace the tables in this file")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(tables() + "\n")
        return
    args.write.write_text(replaced(args.write.read_text()))


if __name__ == "__main__":
    main()
