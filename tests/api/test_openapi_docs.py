"""The OpenAPI document served at /openapi.json tells an integrator every operation's purpose, shows an
example of each success answer, request body and path parameter, lists the errors each operation can answer
with, and says how /v1 is authenticated, so that the docs pages' "Authorize" and "Try it out" work."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import jsonschema_rs
import pytest

from callmemory.core.identity import PHONE_PATTERN
from callmemory.settings import Settings
from support.api import ADMIN_KEY
from support.app import running

# Liveness and the metrics scrape answer 200 or nothing at all: they take no input to refuse, and a
# store that is down shows in the metrics, not as an error.
NO_ERROR_ANSWERS = {("get", "/healthz"), ("get", "/metrics")}
ERROR_BODY = "#/components/schemas/ErrorBody"


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


@pytest.fixture
def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def _has_example(response_or_body: dict[str, Any]) -> bool:
    media = response_or_body.get("content", {}).values()
    return any("example" in m or "examples" in m for m in media)


async def test_the_document_lists_every_route(operations: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert len(operations) >= 13
    assert ("delete", "/v1/bots/{bot_number}/callers/{caller_number}") in operations


async def test_every_operation_has_a_summary_and_a_description(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    missing = [key for key, op in operations.items() if not op.get("summary") or not op.get("description")]

    assert missing == []


async def test_every_operation_shows_an_example_of_its_success_answer(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    missing = [
        key
        for key, op in operations.items()
        if not any(status.startswith("2") and _has_example(r) for status, r in op["responses"].items())
    ]

    assert missing == []


async def test_every_request_body_has_an_example(operations: dict[tuple[str, str], dict[str, Any]]) -> None:
    missing = [
        key for key, op in operations.items() if "requestBody" in op and not _has_example(op["requestBody"])
    ]

    assert missing == []


async def test_every_operation_lists_its_error_answers(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    missing = [
        key
        for key, op in operations.items()
        if key not in NO_ERROR_ANSWERS and not any(s[0] in "45" for s in op["responses"])
    ]

    assert missing == []


async def test_every_error_answer_has_the_error_shape_and_an_example(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    wrong = []
    for key, op in operations.items():
        for status, response in op["responses"].items():
            if status[0] not in "45" or key == ("get", "/readyz"):  # readiness answers its own report
                continue
            media = response.get("content", {}).get("application/json", {})
            if media.get("schema", {}).get("$ref") != ERROR_BODY or "error" not in media.get("example", {}):
                wrong.append((*key, status))

    assert wrong == []


async def test_the_documented_unauthorized_example_is_what_a_request_without_a_key_gets(
    client: httpx.AsyncClient, operations: dict[tuple[str, str], dict[str, Any]]
) -> None:
    op = operations[("get", "/v1/bots/{bot_number}/callers/{caller_number}/calls")]
    documented = op["responses"]["401"]["content"]["application/json"]["example"]

    answer = await client.get("/v1/bots/%2B14155550000/callers/%2B14155551234/calls")

    assert answer.status_code == 401
    assert answer.json() == documented


async def test_every_example_is_valid_under_its_schema(
    document: dict[str, Any], operations: dict[tuple[str, str], dict[str, Any]]
) -> None:
    invalid = []
    checked = 0
    for (method, path), op in operations.items():
        parts = [(status, response) for status, response in op["responses"].items()]
        parts += [("request", op["requestBody"])] if "requestBody" in op else []
        for part, described in parts:
            for media in described.get("content", {}).values():
                if "schema" not in media:
                    continue
                validator = jsonschema_rs.validator_for(
                    {**media["schema"], "components": document["components"]}
                )
                named = media.get("examples") or {"example": {"value": media.get("example")}}
                for name, shown in named.items():
                    if shown["value"] is None:
                        continue
                    checked += 1
                    if not validator.is_valid(shown["value"]):
                        invalid.append((method, path, part, name))

    assert checked > 40
    assert invalid == []


def _seed_event_schemas(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body = document["paths"]["/webhook/call"]["post"]["requestBody"]["content"]["application/json"]
    return {schema["title"]: schema for schema in body["schema"]["oneOf"]}


async def test_every_phone_number_field_has_the_pattern_of_the_numbers_accepted(
    document: dict[str, Any], operations: dict[tuple[str, str], dict[str, Any]]
) -> None:
    seed = _seed_event_schemas(document)
    fields = [
        event["properties"][name]
        for event in seed.values()
        for name in ("from", "to")
        if event["title"] != "OtherEvent" and name in event["properties"]
    ]
    fields += [
        parameter["schema"]
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] in ("bot_number", "caller_number")
    ]

    assert len(fields) > 10
    assert {field.get("pattern") for field in fields} == {PHONE_PATTERN}


async def test_ringing_requires_to_in_the_schema_when_no_default_bot_number_stands_in(
    document: dict[str, Any], settings: Settings
) -> None:
    async with running(settings.model_copy(update={"default_bot_number": "+14155550000"})) as client:
        with_default = (await client.get("/openapi.json")).json()

    assert "to" in _seed_event_schemas(document)["RingingEvent"]["required"]
    assert "to" not in _seed_event_schemas(with_default)["RingingEvent"]["required"]


async def test_the_schema_admits_any_other_event_type_as_the_service_does(document: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for({"oneOf": list(_seed_event_schemas(document).values())})

    assert validator.is_valid({"type": "call.dtmf", "digits": "5"})
    assert not validator.is_valid({"type": "call.ringing", "call_id": "c-1"})


def _parameters(operation: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == where]


def _example(parameter: dict[str, Any]) -> Any:
    """The parameter's first example, where both pages look for it (not in its schema, which they ignore)."""
    examples: dict[str, dict[str, Any]] = parameter.get("examples", {})
    return next((example["value"] for example in examples.values()), None)


async def test_every_v1_operation_names_the_bearer_scheme_and_no_other_operation_does(
    document: dict[str, Any], operations: dict[tuple[str, str], dict[str, Any]]
) -> None:
    schemes = document["components"]["securitySchemes"]
    secured = {key for key, op in operations.items() if op.get("security")}

    assert [{"type": s["type"], "scheme": s["scheme"]} for s in schemes.values()] == [
        {"type": "http", "scheme": "bearer"}
    ]
    assert secured == {key for key in operations if key[1].startswith("/v1/")}
    assert {str(op["security"]) for key, op in operations.items() if key in secured} == {
        str([{name: []} for name in schemes])
    }


async def test_every_path_parameter_has_a_description_and_an_example(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    missing = [
        (*key, p["name"])
        for key, op in operations.items()
        for p in _parameters(op, "path")
        if not p.get("description") or _example(p) is None
    ]

    assert len([p for op in operations.values() for p in _parameters(op, "path")]) > 20
    assert missing == []


async def test_a_v1_request_built_from_the_documented_examples_and_scheme_is_answered(
    client: httpx.AsyncClient, operations: dict[tuple[str, str], dict[str, Any]]
) -> None:
    # What "Authorize" and "Try it out" on /docs send: the example of each parameter, URL-encoded.
    path = "/v1/bots/{bot_number}/callers/{caller_number}/brief"
    filled = path
    for parameter in _parameters(operations[("get", path)], "path"):
        filled = filled.replace(f"{{{parameter['name']}}}", quote(str(_example(parameter)), safe=""))

    answer = await client.get(filled, headers={"authorization": f"Bearer {ADMIN_KEY}"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["caller_number"] == "+14155551234"


async def test_every_tag_is_described_and_every_described_tag_is_used(
    document: dict[str, Any], operations: dict[tuple[str, str], dict[str, Any]]
) -> None:
    described = {tag["name"] for tag in document["tags"] if tag.get("description")}
    used = {tag for op in operations.values() for tag in op["tags"]}

    assert used == described


async def test_no_summary_holds_markdown(operations: dict[tuple[str, str], dict[str, Any]]) -> None:
    # Both pages show a summary as plain text: code, bold or a link would show its marks.
    marks = ("`", "**", "](")
    marked = [key for key, op in operations.items() if any(mark in op["summary"] for mark in marks)]

    assert marked == []
