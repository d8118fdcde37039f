"""Bearer API keys for the integrator API, compared in constant time, optionally scoped to one bot."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from callmemory.api.deps import SettingsDep


@dataclass(frozen=True, slots=True)
class Integrator:
    name: str
    bot_number: str | None  # as configured; None: every bot


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="callmemory"'})


# Declared as a security scheme, so that the OpenAPI document says how /v1 is authenticated and the
# docs page's "Authorize" sends the key. Its own refusal is off: ours has the service's error shape.
bearer = HTTPBearer(
    scheme_name="apiKey",
    description="A key of CALLMEMORY_API_KEYS, sent as `Authorization: Bearer <key>`. A key with a "
    "`bot_number` reaches only that bot's callers.",
    auto_error=False,
)


async def authenticate(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)], settings: SettingsDep
) -> Integrator:
    token = credentials.credentials.strip() if credentials else ""
    if not token:
        raise _unauthorized("send the API key as `Authorization: Bearer <key>`")
    presented = token.encode()
    found: Integrator | None = None
    # Every key is compared, each in constant time, so the time taken tells nothing about any key.
    for key in settings.api_keys:
        if hmac.compare_digest(presented, key.key.get_secret_value().encode()) and found is None:
            found = Integrator(name=key.name, bot_number=key.bot_number)
    if found is None:
        raise _unauthorized("the API key is not valid")
    return found


IntegratorDep = Annotated[Integrator, Depends(authenticate)]
