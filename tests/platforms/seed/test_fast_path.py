"""The seed webhook is served without FastAPI's routing and middleware, and nobody can tell.

It answers with the same request id header, the same error bodies (including the 500 of an unexpected
failure, which names nothing of the call), and only for POST; FastAPI still documents it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from callmemory.calls.handler import CallHandler

RINGING = {"type": "call.ringing", "call_id": "fp-1", "from": "+14155551234", "to": "+14155550000"}


async def test_the_webhook_returns_the_request_id_it_was_given_or_made(client: httpx.AsyncClient) -> None:
    given = await client.post("/webhook/call", json=RINGING, headers={"X-Request-ID": "lb-7f3a.42"})
    made = await client.post("/webhook/call", json={**RINGING, "call_id": "fp-2"})

    assert given.headers["x-request-id"] == "lb-7f3a.42"
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != given.headers["x-request-id"]


async def test_an_unexpected_failure_is_a_500_with_the_usual_error_body_and_no_detail(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: CallHandler, event: Any) -> Any:
        raise RuntimeError("the caller said: my card number is 4111")

    monkeypatch.setattr(CallHandler, "handle", broken)

    response = await client.post("/webhook/call", json=RINGING)

    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "an unexpected error occurred"}
    assert "4111" not in response.text


async def test_a_refused_event_gets_the_usual_error_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhook/call", content=b"{not json")

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_body"


async def test_other_methods_are_left_to_fastapi(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhook/call")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_the_webhook_is_still_documented(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    assert "post" in schema["paths"]["/webhook/call"]
