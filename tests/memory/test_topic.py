"""A returning caller's topic is the first substantive thing they said on their last call, as a clean
phrase: no greeting, filler or introduction in front of it, no word or phrase cut in half."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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


def caller(*lines: str) -> list[Turn]:
    return turns(*((Role.CALLER, line) for line in lines))


def test_the_topic_is_the_first_sentence_of_substance_not_the_whole_turn() -> None:
    assert topic_of(caller("My parcel never arrived. It was a blue kettle.")) == "My parcel never arrived"


def test_greetings_and_fillers_in_front_of_the_topic_are_left_out() -> None:
    assert topic_of(caller("Hello again, um, so, my router keeps dropping.")) == "my router keeps dropping"


def test_an_introduction_is_not_the_topic() -> None:
    call = caller("Hello again, it's Maria Lopez. Any news on order 48213?")

    assert topic_of(call) == "Any news on order 48213"


def test_an_introduction_in_front_of_the_topic_is_left_out() -> None:
    assert (
        topic_of(caller("Hi, this is Maria Lopez, and my order 48213 is late.")) == "my order 48213 is late"
    )


@pytest.mark.parametrize(
    "said", ["hello again", "Hello again.", "Hi, it's me again.", "Hello? Can you hear me?", "Thanks, bye."]
)
def test_a_call_of_nothing_but_pleasantries_has_no_topic(said: str) -> None:
    assert topic_of(caller(said)) is None


def test_a_pleasantry_that_goes_on_into_substance_is_kept() -> None:
    assert (
        topic_of(caller("Thanks for fixing my router last week.")) == "Thanks for fixing my router last week"
    )


def test_a_long_topic_ends_where_a_clause_ends() -> None:
    said = (
        "I'd like to order more coffee, the same as last time, for two bags of Ethiopian Yirgacheffe beans."
    )

    assert topic_of(caller(said)) == "I'd like to order more coffee, the same as last time"


def test_a_long_topic_without_a_clause_break_ends_where_a_phrase_ends() -> None:
    said = "I want to place an order for two bags of Ethiopian Yirgacheffe coffee beans to be delivered soon"

    assert (
        topic_of(caller(said))
        == "I want to place an order for two bags of Ethiopian Yirgacheffe coffee beans"
    )


def test_a_long_topic_cut_between_words_does_not_end_on_a_dangling_word() -> None:
    said = "My router keeps crashing the modem keeps crashing the phone keeps crashing every day the TV too"

    assert topic_of(caller(said)) == said.removesuffix(" the TV too")
