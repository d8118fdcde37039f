"""A returning caller's topic is the first substantive thing they said on their last call."""

from __future__ import annotations

from datetime import UTC, datetime

from callmemory.core.events import Role
from callmemory.memory.topic import topic_of
from callmemory.memory.types import Turn


def turns(*lines: tuple[Role, str]) -> list[Turn]:
    now = datetime.now(UTC)
    return [Turn(seq=i, role=role, text=text, at=now, call_id="c") for i, (role, text) in enumerate(lines, 1)]


def test_the_topic_skips_the_bots_lines_and_pleasantries() -> None:
    call = turns(
        (Role.BOT, "Hello! How can I help?"),
        (Role.CALLER, "Hi."),
        (Role.CALLER, "Hello, I need a new SIM card."),
    )
    assert topic_of(call) == "I need a new SIM card"


def test_a_long_topic_is_cut_at_a_word_boundary() -> None:
    topic = topic_of(turns((Role.CALLER, "I am calling because " + "the router keeps dropping " * 10)))
    assert topic is not None
    assert len(topic) <= 90
    assert topic.endswith("dropping") or topic.endswith("router") or topic.endswith("keeps")


def test_a_short_only_answer_is_still_a_topic() -> None:
    assert topic_of(turns((Role.CALLER, "Billing."))) == "Billing"


def test_a_call_where_the_caller_said_nothing_has_no_topic() -> None:
    assert topic_of(turns((Role.BOT, "Hello! How can I help?"))) is None
