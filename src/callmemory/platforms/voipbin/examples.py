"""Example VoIPBin events and fetch answers, in the shapes VoIPBin's source produces, for the API docs."""

from __future__ import annotations

from typing import Any, Final

from callmemory.platforms.voipbin.wire import MEMORY_VARIABLE, ZERO_UUID

_CALL = "5371e9db-d035-4db6-a8d6-0994d33e744e"
_FLOW = "6f18ae1c-ddf8-413b-9572-ad30574604ef"
_TRANSCRIBE = "8c5a9e2a-0000-4000-8000-000000000003"

EVENT_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "call answered": {
        "value": {
            "type": "call_progressing",
            "data": {
                "id": _CALL,
                "activeflow_id": _FLOW,
                "master_call_id": ZERO_UUID,
                "source": {"type": "tel", "target": "+15551234567"},
                "destination": {"type": "tel", "target": "+15559876543"},
                "status": "progressing",
                "direction": "incoming",
                "tm_progressing": "2022-04-11T00:23:55.026Z",
                "tm_update": "2022-04-11T00:23:55.026Z",
            },
        }
    },
    "transcribe started (own-LLM mode)": {
        "value": {
            "type": "transcribe_created",
            "data": {
                "id": _TRANSCRIBE,
                "reference_type": "call",
                "reference_id": _CALL,
                "activeflow_id": _FLOW,
            },
        }
    },
    "caller spoke (own-LLM mode)": {
        "value": {
            "type": "transcript_created",
            "data": {
                "id": "9d59e7f0-0000-4000-8000-000000000002",
                "transcribe_id": _TRANSCRIBE,
                "direction": "in",
                "message": "My order 4417 never arrived.",
                "tm_transcript": "0001-01-01 00:00:08.991840",
                "tm_create": "2024-04-04 07:15:59.233415",
            },
        }
    },
    "AI message (managed-AI mode)": {
        "value": {
            "type": "aimessage_created",
            "data": {
                "id": "1f0e0000-0000-4000-8000-000000000004",
                "activeflow_id": _FLOW,
                "role": "assistant",
                "content": "I am sorry to hear that. Let me check order 4417.",
                "tm_create": "2024-04-04T07:16:02.120Z",
            },
        }
    },
    "call summary": {
        "value": {
            "type": "summary_created",
            "data": {
                "id": "2a0e0000-0000-4000-8000-000000000005",
                "reference_type": "call",
                "reference_id": _CALL,
                "status": "done",
                "content": "The caller's order 4417 has not arrived; a replacement was offered.",
            },
        }
    },
    "hangup": {
        "value": {
            "type": "call_hangup",
            "data": {
                "id": _CALL,
                "activeflow_id": _FLOW,
                "source": {"type": "tel", "target": "+15551234567"},
                "destination": {"type": "tel", "target": "+15559876543"},
                "status": "hangup",
                "direction": "incoming",
                "hangup_reason": "normal",
                "tm_update": "2022-04-11T00:25:01.300Z",
            },
        }
    },
}

_ACTION_ID = "df25724f-0000-4000-8000-000000000001"
FETCH_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "managed-AI mode": {
        "value": [
            {
                "id": _ACTION_ID,
                "type": "variable_set",
                "option": {
                    "key": MEMORY_VARIABLE,
                    "value": 'The caller has called 1 time(s) before. Last time they said: "My order '
                    '4417 never arrived".\nEarlier conversation (oldest first):\nCaller: My order 4417 never '
                    "arrived.",
                },
            },
            {
                "id": "df25724f-0000-4000-8000-000000000002",
                "type": "talk",
                "option": {"text": "Welcome back! ...", "language": "en-US", "provider": "gcp"},
            },
            {
                "id": "df25724f-0000-4000-8000-000000000003",
                "type": "ai_talk",
                "option": {"assistance_type": "ai", "assistance_id": "a1b2c3d4-0000-4000-8000-00000000000a"},
            },
        ]
    },
    "own-LLM mode": {
        "value": [
            {
                "id": _ACTION_ID,
                "type": "talk",
                "option": {
                    "text": "Hello! How can I help you today?",
                    "language": "en-US",
                    "provider": "gcp",
                },
            },
            {
                "id": "df25724f-0000-4000-8000-000000000002",
                "type": "transcribe_start",
                "option": {"language": "en-US", "direction": "in"},
            },
            {"id": "df25724f-0000-4000-8000-000000000003", "type": "sleep", "option": {"duration": 3600000}},
        ]
    },
}

EVENT_ACK_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "applied": {"value": {"status": "applied", "type": "transcript_created"}},
    "a redelivery": {"value": {"status": "duplicate", "type": "transcript_created"}},
    "held until its call is known": {"value": {"status": "held", "type": "transcript_created"}},
    "a type callmemory does not use": {"value": {"status": "ignored", "type": "queue_created"}},
}

FETCH_REQUEST_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "the call and its activeflow": {"value": {"activeflow_id": _FLOW, "reference_id": _CALL}},
}
