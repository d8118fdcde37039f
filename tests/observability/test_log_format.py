"""The log format: readable lines on a terminal, JSON anywhere else, unless CALLMEMORY_LOG_FORMAT says."""

from __future__ import annotations

import importlib
import io
import json
import logging

import pytest

from callmemory.observability.logs import log_config


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def logged(fmt: str, stream: io.StringIO) -> str:
    """A line as the formatter that `serve`'s logging configuration names writes it."""
    module, name = log_config("info", fmt=fmt, stream=stream)["formatters"]["default"]["()"].rsplit(".", 1)
    formatter: logging.Formatter = getattr(importlib.import_module(module), name)()
    record = logging.makeLogRecord(
        {"name": "callmemory.test", "levelname": "INFO", "levelno": logging.INFO, "msg": "service started"}
    )
    return formatter.format(record)


def test_on_a_terminal_the_logs_are_readable_lines() -> None:
    line = logged("auto", Terminal())

    assert line.endswith(" INFO callmemory.test: service started")


def test_off_a_terminal_the_logs_are_json_lines() -> None:
    line = logged("auto", io.StringIO())

    assert json.loads(line)["message"] == "service started"


@pytest.mark.parametrize(("fmt", "stream"), [("json", Terminal()), ("text", io.StringIO())])
def test_a_chosen_format_holds_whatever_the_stream(fmt: str, stream: io.StringIO) -> None:
    line = logged(fmt, stream)

    assert line.startswith("{") == (fmt == "json")
