"""The summary's structure is asked for in the strongest form the provider accepts, found out once per
process: the stub refuses formats as the real servers do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callmemory.devtools.stub_llm import Refusal
from callmemory.services import open_services
from callmemory.settings import Settings
from callmemory.summaries.formats import SCHEMA
from support.llm import FakeLLM, summary_requests
from support.phone import Phone

Rows = Callable[..., Any]


def asked(llm: FakeLLM) -> list[str]:
    """Each summary request's response_format, as a word ("json_object+schema" for llama-cpp-python's)."""
    shapes = [r.get("response_format") for r in summary_requests(llm)]
    return [
        "text" if shape is None else shape["type"] + ("+schema" if "schema" in shape else "")
        for shape in shapes
    ]


async def summarise_two_calls(phone: Phone, settings: Settings) -> None:
    """Two callers' jobs, summarised by one worker process."""
    await phone.call("My dishwasher with serial DW-7731 is leaking.")
    phone.caller = "+14155551999"
    await phone.call("My invoice 58120 is wrong.")
    async with open_services(settings) as services:
        assert services.summaries is not None
        assert await services.summaries.drain() == 2


async def test_a_provider_that_constrains_to_a_schema_is_asked_with_the_strict_json_schema(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await summarise_two_calls(phone, settings)

    assert asked(llm) == ["json_schema", "json_schema"]
    shape = summary_requests(llm)[0]["response_format"]
    assert shape["json_schema"]["strict"] is True
    assert shape["json_schema"]["schema"] == SCHEMA


def test_the_strict_schema_requires_every_key_and_allows_no_other() -> None:
    def objects(schema: dict[str, Any]) -> list[dict[str, Any]]:
        inner = [s for s in schema.get("properties", {}).values() if isinstance(s, dict)]
        return ([schema] if schema.get("type") == "object" else []) + [o for s in inner for o in objects(s)]

    for obj in objects(SCHEMA):
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])


async def test_llama_cpp_python_refusing_json_schema_is_asked_with_its_json_object_schema_from_then_on(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    llm.refuses, llm.refusal = frozenset({"json_schema"}), "llama-cpp-python"

    await summarise_two_calls(phone, settings)

    assert asked(llm) == ["json_schema", "json_object+schema", "json_object+schema"]
    assert len(await sql("SELECT 1 FROM callers WHERE next_greeting LIKE 'Welcome back!%'")) == 2
    assert await sql("SELECT call_id FROM summary_jobs") == []


async def test_a_provider_refusing_each_response_format_is_asked_with_instructions_alone(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    style: Refusal = "openai"
    llm.refuses, llm.refusal = frozenset({"json_schema", "json_object"}), style

    await summarise_two_calls(phone, settings)

    assert asked(llm) == ["json_schema", "json_object+schema", "json_object", "text", "text"]
    assert await sql("SELECT call_id FROM summary_jobs") == []


async def test_the_format_setting_is_the_strongest_one_asked_for(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await summarise_two_calls(phone, settings.model_copy(update={"summary_format": "json_object"}))

    assert asked(llm) == ["json_object", "json_object"]


async def test_a_request_refused_for_another_reason_does_not_step_the_format_down(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call("My dishwasher with serial DW-7731 is leaking.")
    llm.status = 400

    async with open_services(settings.model_copy(update={"summary_retry_base_s": 60})) as services:
        assert services.summaries is not None
        await services.summaries.drain()

    assert asked(llm) == ["json_schema"]
    [job] = await sql("SELECT last_error FROM summary_jobs")
    assert job.last_error == "provider: BadRequestError (HTTP 400)"
