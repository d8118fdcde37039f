"""VoIPBin's two entry points: the `fetch` action's URL (actions out) and the event webhook (acks out)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any, Final

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request

from callmemory.api.deps import MetricsDep, ServicesDep, SettingsDep
from callmemory.api.errors import ErrorBody, error_response, responses
from callmemory.core.errors import CallMemoryError, NotEnabled, Unauthorized
from callmemory.observability.context import bind_call
from callmemory.platforms.voipbin import examples as voipbin_examples
from callmemory.platforms.voipbin import wire as voipbin
from callmemory.platforms.voipbin.bridge import VoipbinBridge
from callmemory.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/voipbin", tags=["voipbin"])


async def get_bridge(services: ServicesDep) -> VoipbinBridge:
    return services.voipbin


BridgeDep = Annotated[VoipbinBridge, Depends(get_bridge)]


_FETCH_DOC: Final[dict[str, Any]] = {
    "summary": "The URL of a VoIPBin flow's fetch action: greeting and caller memory as actions",
    "description": (
        "Configure the `fetch` action's `event_url` as "
        "`https://<host>/voipbin/fetch/<CALLMEMORY_VOIPBIN_FETCH_TOKEN>/${voipbin.call.destination.target}/"
        "${voipbin.call.source.target}?direction=${voipbin.call.direction}`. The bot is the destination of "
        "an incoming call and the source of an outgoing one; without `direction` the call is taken as "
        "incoming. Answers a bare JSON array of actions: managed_ai bots get "
        "`variable_set caller.memory`, `talk` (greeting) and `ai_talk`; own_llm bots get `talk`, "
        "`transcribe_start` and `sleep`."
    ),
    "responses": {
        200: {
            "description": "A bare JSON array of actions, each with a fresh id",
            "content": {"application/json": {"examples": voipbin_examples.FETCH_EXAMPLES}},
        },
        **responses(401, 409, 422, 503),  # 409: a fetch naming a call that has already ended
        404: error_response(
            "CALLMEMORY_VOIPBIN_FETCH_TOKEN is not set: the fetch URL is off",
            ErrorBody(
                error="not_found",
                detail="the VoIPBin fetch endpoint is off: set CALLMEMORY_VOIPBIN_FETCH_TOKEN",
            ),
        ),
    },
}
_FETCH_PATH: Final = "/fetch/{token}/{destination}/{source}"


# VoIPBin uses GET unless the action's event_method says otherwise.
@router.get(_FETCH_PATH, operation_id="voipbin_fetch_get", **_FETCH_DOC)
@router.post(
    _FETCH_PATH,
    operation_id="voipbin_fetch_post",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    # Any body is taken: one that cannot be read only leaves the call unrecorded.
                    "schema": {
                        "anyOf": [voipbin.FetchRequest.model_json_schema(), {}],
                        "description": "What VoIPBin sends. A body that is not this object (or not JSON, or "
                        "not storable) is ignored: the caller is greeted, the call is not recorded.",
                    },
                    "examples": voipbin_examples.FETCH_REQUEST_EXAMPLES,
                }
            },
        }
    },
    **_FETCH_DOC,
)
async def fetch(
    request: Request,
    *,
    token: Annotated[
        str,
        Path(
            description="The secret CALLMEMORY_VOIPBIN_FETCH_TOKEN",
            openapi_examples={"token": {"value": "<fetch token>"}},
        ),
    ],
    destination: Annotated[
        str,
        Path(
            description="`${voipbin.call.destination.target}`: the number called (the bot, if incoming)",
            openapi_examples={"bot": {"value": "+15559876543"}},
        ),
    ],
    source: Annotated[
        str,
        Path(
            description="`${voipbin.call.source.target}`: the number calling (the caller, if incoming)",
            openapi_examples={"caller": {"value": "+15551234567"}},
        ),
    ],
    direction: Annotated[
        str | None,
        Query(
            description="`${voipbin.call.direction}`: `outgoing` makes the source the bot's number",
            examples=["incoming"],
        ),
    ] = None,
    settings: SettingsDep,
    bridge: BridgeDep,
    metrics: MetricsDep,
) -> list[dict[str, Any]]:
    with metrics.webhook("voipbin") as seen:
        seen.type = "fetch"
        bot, caller = voipbin.fetch_parties(destination, source, direction)
        return await _fetch(request, token=token, bot=bot, caller=caller, settings=settings, bridge=bridge)


async def _fetch(
    request: Request, *, token: str, bot: str, caller: str, settings: Settings, bridge: VoipbinBridge
) -> list[dict[str, Any]]:
    expected = settings.voipbin_fetch_token
    if expected is None:
        raise NotEnabled("the VoIPBin fetch endpoint is off: set CALLMEMORY_VOIPBIN_FETCH_TOKEN")
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        log.warning("VoIPBin fetch with a wrong token refused")
        raise Unauthorized("wrong fetch token")
    body = await request.body()
    try:
        call = voipbin.parse_fetch(body)
    except CallMemoryError as exc:  # a body that is not JSON, not storable or not the expected object
        # Refusing would stop the caller's flow; greet them without recording instead.
        log.warning("VoIPBin fetch body unreadable (%s); answering without a call id", exc.message)
        call = voipbin.FetchRequest()
    if call.reference_id:
        bind_call(call.reference_id)
    return await bridge.fetch(bot, caller, call)


@router.post(
    "/events",
    summary="VoIPBin's event webhook: calls, transcripts, AI messages, summaries",
    description=(
        "Set as the customer's webhook URL in VoIPBin. Verifies `X-VoIPBIN-Signature` when "
        "CALLMEMORY_VOIPBIN_WEBHOOK_SECRET is set. Any accepted, duplicate or unknown event gets 200; "
        "503 only when the event could not be stored (VoIPBin then retries)."
    ),
    responses={
        200: {
            "description": "The event was applied, was a redelivery, waits for an event it depends on, or "
            "is of a type callmemory does not use",
            "content": {"application/json": {"examples": voipbin_examples.EVENT_ACK_EXAMPLES}},
        },
        **responses(400, 401, 413, 422, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": voipbin.EVENT_SCHEMA,
                    "examples": voipbin_examples.EVENT_EXAMPLES,
                }
            },
        }
    },
)
async def events(
    request: Request,
    background: BackgroundTasks,
    settings: SettingsDep,
    bridge: BridgeDep,
    metrics: MetricsDep,
) -> dict[str, str]:
    with metrics.webhook("voipbin") as seen:
        event = await _event(request, settings)
        # Unknown types keep to one label value: the type comes from the request.
        seen.type = event.type if event.data is not None else "other"
        handled = await bridge.handle(event)
        seen.outcome = str(handled.outcome)
    for heard in handled.to_answer:
        # After the response: VoIPBin's delivery must not wait for the LLM.
        background.add_task(bridge.answer, heard)
    return {"status": str(handled.outcome), "type": event.type}


async def _event(request: Request, settings: Settings) -> voipbin.Event:
    body = await request.body()
    secret = settings.voipbin_webhook_secret
    if secret is not None:
        header = request.headers.get(voipbin.SIGNATURE_HEADER)
        problem = voipbin.signature_problem(secret.get_secret_value().encode(), body, header)
        if problem is not None:
            log.warning("VoIPBin event refused: %s", problem)
            raise Unauthorized(problem)
    return voipbin.parse(body)
