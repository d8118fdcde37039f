"""The LLM is faked on a real local port (callmemory.devtools.stub_llm), so the real openai SDK path runs.

A served stub rather than transport patching: the openai SDK's HTTP stack is its own business (it has
moved between httpx packages), and a socket is the one boundary every version must cross.
"""

from callmemory.devtools.stub_llm import StubLLM as FakeLLM
from callmemory.devtools.stub_llm import StubServer as LLMServer

__all__ = ["FakeLLM", "LLMServer"]
