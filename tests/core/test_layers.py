"""The core is the bottom floor: it imports nothing of the layers above it, which all import it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import callmemory

PACKAGE = Path(callmemory.__file__).parent


def imported(module: Path) -> set[str]:
    """The callmemory modules that `module` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("callmemory.")}


@pytest.mark.parametrize("module", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_a_core_module_imports_the_core_alone(module: Path) -> None:
    assert {name for name in imported(module) if not name.startswith("callmemory.core.")} == set()


@pytest.mark.parametrize("layer", ["memory", "conversation"])
def test_memory_and_conversation_do_not_import_the_call_handler_above_them(layer: str) -> None:
    users = {
        m.name
        for m in (PACKAGE / layer).rglob("*.py")
        if any(n.startswith("callmemory.calls") for n in imported(m))
    }

    assert users == set()


def test_settings_do_not_import_their_documentation() -> None:
    assert "callmemory.settings_doc" not in imported(PACKAGE / "settings.py")
