"""One simulated VoIPBin call: the fetch request and the events VoIPBin sends, in the shapes its source
produces (see platforms/voipbin/wire.py), signed as VoIPBin signs them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callmemory.platforms.voipbin import wire as voipbin


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fresh_id() -> str:
    return str(uuid.uuid4())


@dataclass
class VoipbinCall:
    caller: str
    bot: str
    call_id: str = field(default_factory=_fresh_id)
    activeflow_id: str = field(default_factory=_fresh_id)
    transcribe_id: str = field(default_factory=_fresh_id)

    def fetch(self, token: str) -> tuple[str, bytes]:
        """The flow's fetch action: its URL (numbers substituted unencoded, as VoIPBin does) and body."""
        body = {"reference_id": self.call_id, "activeflow_id": self.activeflow_id}
        return f"/voipbin/fetch/{token}/{self.bot}/{self.caller}", json.dumps(body).encode()

    def _call_event(self, kind: str, status: str, **extra: Any) -> dict[str, Any]:
        data = {
            "id": self.call_id,
            "activeflow_id": self.activeflow_id,
            "type": "flow",
            "master_call_id": voipbin.ZERO_UUID,
            "source": {"type": "tel", "target": self.caller},
            "destination": {"type": "tel", "target": self.bot},
            "status": status,
            "direction": "incoming",
            "tm_update": _now(),  # part of the delivery's dedup key: distinct per event
            **extra,
        }
        return {"type": kind, "data": data}

    def created(self) -> dict[str, Any]:
        return self._call_event("call_created", "dialing")

    def progressing(self) -> dict[str, Any]:
        return self._call_event("call_progressing", "progressing", tm_progressing=_now())

    def hangup(self) -> dict[str, Any]:
        return self._call_event("call_hangup", "hangup", hangup_by="remote", hangup_reason="normal")

    def transcribe_created(self) -> dict[str, Any]:
        data = {
            "id": self.transcribe_id,
            "reference_type": "call",
            "reference_id": self.call_id,
            "activeflow_id": self.activeflow_id,
            "status": "progressing",
            "direction": "in",
        }
        return {"type": "transcribe_created", "data": data}

    def transcript(self, message: str) -> dict[str, Any]:
        data = {
            "id": _fresh_id(),
            "transcribe_id": self.transcribe_id,
            "direction": "in",
            "message": message,
            "tm_create": _now(),
        }
        return {"type": "transcript_created", "data": data}

    @staticmethod
    def signed(event: dict[str, Any], secret: str | None) -> tuple[bytes, dict[str, str]]:
        """The delivery's body and headers; signed when the service expects a webhook secret."""
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json"}
        if secret is not None:
            headers[voipbin.SIGNATURE_HEADER] = voipbin.signature(secret.encode(), body)
        return body, headers
