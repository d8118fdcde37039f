"""`callmemory --help`: every command listed, every option explained."""

from __future__ import annotations

import argparse

import pytest

from callmemory.cli import parser


def commands() -> dict[str, argparse.ArgumentParser]:
    [chooser] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(chooser.choices)


def test_the_top_level_help_lists_every_command_with_its_summary() -> None:
    shown = parser().format_help()

    for name in ("serve", "stub-llm", "mcp", "simulate", "stats", "export", "forget", "quarantine"):
        assert name in shown
    assert "    stub-llm  serve a local OpenAI-compatible stub" in shown
    assert "    mcp       serve MCP over stdio" in shown


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_of_a_command_has_help_text(name: str) -> None:
    unexplained = [
        action.dest
        for action in commands()[name]._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]

    assert unexplained == []
