"""The LLM is faked on a real local port (callmemory.devtools.stub_llm), so the real openai SDK path runs.

A served stub rather than transport patching: the openai SDK's HTTP stack is its own business (it has
moved between httpx packages), and a socket is the one boundary every version must cross.
"""

from typing import Any

from callmemory.devtools.stub_llm import Reply, is_summary
from callmemory.devtools.stub_llm import StubLLM as FakeLLM
from callmemory.devtools.stub_llm import StubServer as LLMServer

__all__ = ["FakeLLM", "LLMServer", "Reply", "summary_requests"]


def summary_requests(llm: FakeLLM) -> list[dict[str, Any]]:
    """The summary job's requests the fake LLM received, in order (refused ones included)."""
    return [r for r in llm.requests if is_summary(r)]
