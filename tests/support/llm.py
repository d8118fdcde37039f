"""The LLM is faked on a real local port (callmemory.devtools.stub_llm), so the real openai SDK path runs.

A served stub rather than transport patching: the openai SDK's HTTP stack is its own business (it has
moved between httpx packages), and a socket is the one boundary every version must cross.
"""

import json
from typing import Any

from callmemory.devtools.stub_llm import Reply, is_summary, summarise
from callmemory.devtools.stub_llm import StubLLM as FakeLLM
from callmemory.devtools.stub_llm import StubServer as LLMServer

__all__ = ["FakeLLM", "LLMServer", "Reply", "summary_requests", "wordy", "wrong_keys"]


def summary_requests(llm: FakeLLM) -> list[dict[str, Any]]:
    """The summary job's requests the fake LLM received, in order (refused ones included)."""
    return [r for r in llm.requests if is_summary(r)]


def wrong_keys(messages: list[dict[str, Any]]) -> str:
    """A summary as a small model writes it: JSON, but not with the keys asked for."""
    return json.dumps({"summary": "The caller has a leaking dishwasher.", "greeting": "Hello again!"})


def wordy(messages: list[dict[str, Any]]) -> str:
    """The stub's summary with a rolling summary of about 750 tokens: past the default max_tokens of 600."""
    right = json.loads(summarise(messages))
    return json.dumps({**right, "caller_summary": right["caller_summary"] + " Still leaking." * 250})
