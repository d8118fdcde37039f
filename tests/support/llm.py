"""The LLM is faked on a real local port (callmemory.devtools.stub_llm), so the real openai SDK path runs.

A served stub rather than transport patching: the openai SDK's HTTP stack is its own business (it has
moved between httpx packages), and a socket is the one boundary every version must cross.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callmemory.devtools.stub_llm import Reply, is_summary, summarise
from callmemory.devtools.stub_llm import StubLLM as FakeLLM
from callmemory.devtools.stub_llm import StubServer as LLMServer

__all__ = [
    "MISBEHAVIOURS",
    "FakeLLM",
    "LLMServer",
    "Misbehaviour",
    "Reply",
    "preparing",
    "summary_requests",
    "wordy",
    "wrong_keys",
]


def summary_requests(llm: FakeLLM) -> list[dict[str, Any]]:
    """The summary job's requests the fake LLM received, in order (refused ones included)."""
    return [r for r in llm.requests if is_summary(r)]


def wrong_keys(messages: list[dict[str, Any]]) -> str:
    """A summary as a small model writes it: JSON, but not with the keys asked for."""
    return json.dumps({"summary": "The caller has a leaking dishwasher.", "greeting": "Hello again!"})


def preparing(greeting: str, **profile: list[str]) -> Callable[[list[dict[str, Any]]], str]:
    """The stub's summary with `greeting` as the next greeting, and with the profile entries given, as a
    real model wrote them."""

    def answer(messages: list[dict[str, Any]]) -> str:
        right = json.loads(summarise(messages))
        return json.dumps({**right, "next_greeting": greeting, "profile": {**right["profile"], **profile}})

    return answer


def wordy(messages: list[dict[str, Any]]) -> str:
    """The stub's summary with a rolling summary of about 750 tokens: past the default max_tokens of 600."""
    right = json.loads(summarise(messages))
    return json.dumps({**right, "caller_summary": right["caller_summary"] + " Still leaking." * 250})


@dataclass(frozen=True)
class Misbehaviour:
    """An answer written after the defects a small real model showed on the phone (issue 20: markdown,
    letters, placeholders, answers cut at max_tokens, monologues), and what the caller must hear of it
    once it is made sayable (at the default CALLMEMORY_ANSWER_MAX_CHARS)."""

    answer: str
    heard: str
    finish_reason: str = "stop"

    def on(self, llm: FakeLLM) -> str:
        """Make `llm` answer so; returns what the caller must hear."""
        llm.reply = lambda messages: self.answer
        llm.finish_reason = self.finish_reason
        return self.heard


MISBEHAVIOURS = {
    "a letter with markdown, a list, a placeholder and a sign-off": Misbehaviour(
        "Dear Maria,\n\nThank you for reaching out to us about your order **#48213**. I'm happy to help!"
        "\n\nHere's what I found:\n\n- Your order was shipped on *Monday*.\n- It will be delivered to "
        "[address] by Friday.\n\nIf you have any other questions, please don't hesitate to contact us."
        "\n\nBest regards,\nAlex",
        "Thank you for reaching out to us about your order #48213. I'm happy to help! Here's what I found. "
        "Your order was shipped on Monday. If you have any other questions, please don't hesitate to "
        "contact us.",
    ),
    "an answer cut off at max_tokens": Misbehaviour(
        "Sure. I have booked the engineer for Tuesday morning. Thank",
        "Sure. I have booked the engineer for Tuesday morning.",
        finish_reason="length",
    ),
    "a monologue": Misbehaviour(
        "I understand that you are having trouble with your internet connection, and I am sorry to hear "
        "that. There are several things that could be causing the problem. First, your router may need to "
        "be restarted. Second, there may be an outage in your area, which our technical team would be able "
        "to confirm for you. Third, the cables between your router and the wall socket may be loose or "
        "damaged, so please check them carefully. If none of these steps help, I would recommend that you "
        "contact our technical support team, who will be able to run a full diagnostic on your line.",
        "I understand that you are having trouble with your internet connection, and I am sorry to hear "
        "that. There are several things that could be causing the problem. First, your router may need to "
        "be restarted.",
    ),
}
