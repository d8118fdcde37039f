"""Plays an integrator: calls to the /v1 API with a bearer key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

ADMIN_KEY = "admin-key-0123456789abcdefghij"  # every bot
BOT_A_KEY = "bot-a-key-0123456789abcdefghij"  # scoped to BOT_A
BOT_A = "+14155550000"
BOT_B = "+14155550001"
CALLER = "+14155551234"


@dataclass
class Api:
    http: httpx.AsyncClient
    key: str = ADMIN_KEY

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(f"/v1{path}", params=params, headers=self._headers())

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post(f"/v1{path}", json=body, headers=self._headers())

    async def post_content(self, path: str, content: str | bytes) -> httpx.Response:
        """A body sent exactly as given (httpx's `json=` cannot send a lone surrogate's escape)."""
        headers = {**self._headers(), "content-type": "application/json"}
        return await self.http.post(f"/v1{path}", content=content, headers=headers)

    async def delete(self, path: str) -> httpx.Response:
        return await self.http.delete(f"/v1{path}", headers=self._headers())


def caller_path(bot: str = BOT_A, caller: str = CALLER) -> str:
    return f"/bots/{bot}/callers/{caller}"
