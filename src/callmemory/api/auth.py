"""Bearer API keys for the integrator API, compared in constant time, optionally scoped to one bot."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from callmemory.api.deps import SettingsDep


@dataclass(frozen=True, slots=True)
class Integrator:
    name: str
    bot_number: str | None  # as configured; None: every bot


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="callmemory"'})


async def authenticate(request: Request, settings: SettingsDep) -> Integrator:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send the API key as `Authorization: Bearer <key>`")
    presented = token.strip().encode()
    found: Integrator | None = None
    # Every key is compared, each in constant time, so the time taken tells nothing about any key.
    for key in settings.api_keys:
        if hmac.compare_digest(presented, key.key.get_secret_value().encode()) and found is None:
            found = Integrator(name=key.name, bot_number=key.bot_number)
    if found is None:
        raise _unauthorized("the API key is not valid")
    return found


IntegratorDep = Annotated[Integrator, Depends(authenticate)]
