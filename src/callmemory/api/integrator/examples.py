"""The OpenAPI examples of the integrator API: one made-up caller, Ada, whose router drops every evening."""

from __future__ import annotations

from typing import Any, Final

CONTEXT: Final[dict[str, Any]] = {
    "messages": [
        {
            "role": "system",
            "content": "You are a helpful phone assistant. ...\n\nThis caller has called 3 time(s) before. "
            "...\n\nSummary of your earlier calls with this caller: Ada, account 99812, router drops every "
            "evening; a technician visit was promised.",
        },
        {"role": "user", "content": "Hi, it's me again."},
    ],
    "memory_tokens": 212,
    "budget_tokens": 2000,
    "returning": True,
    "greeting": "Welcome back, Ada! Did the technician fix your router?",
}

NEW_TURN: Final[dict[str, Any]] = {"role": "caller", "text": "My router is down again."}
NEW_TURNS: Final[dict[str, dict[str, Any]]] = {
    "the caller spoke": {"value": NEW_TURN},
    "your bot answered": {"value": {"role": "bot", "text": "Sorry to hear that. Let me check your line."}},
}
TURN_RECORDED: Final[dict[str, Any]] = {"call_id": "c-1", "seq": 3}

CALL_ENDS: Final[dict[str, dict[str, Any]]] = {"with a reason": {"value": {"reason": "caller_hangup"}}}
CALL_END_RESULT: Final[dict[str, Any]] = {"status": "archived"}
CALL_VERIFIED: Final[dict[str, Any]] = {"status": "verified"}

RECEIPT: Final[dict[str, Any]] = {
    "bot_number": "+14155550000",
    "caller_number": "+14155551234",
    "erased_at": "2026-11-25T08:00:00Z",
    "deleted": {
        "caller": True,
        "calls": 3,
        "turns": 41,
        "call_summaries": 3,
        "caller_summary": True,
        "profile": True,
        "prepared_greeting": True,
        "summary_jobs": 0,
        "redis_keys": 4,
        "live_calls": 0,
    },
    "tombstone": "kept: nothing of this caller from before erased_at is stored again, not by a queued "
    "summary, a retried hangup or a late webhook",
}
CALL: Final[dict[str, Any]] = {
    "platform": "seed",
    "call_id": "c-1",
    "started_at": "2026-11-24T17:02:11Z",
    "ended_at": "2026-11-24T17:05:40Z",
    "end_reason": "caller_hangup",
    "turn_count": 7,
    "summary": "Router in the attic drops every evening; a technician visit was promised.",
    "caller_verified": True,
}
TURNS: Final[list[dict[str, Any]]] = [
    {
        "seq": 1,
        "role": "bot",
        "text": "Hello! How can I help you today?",
        "at": "2026-11-24T17:02:11Z",
        "fallback": False,
    },
    {
        "seq": 2,
        "role": "caller",
        "text": "My router drops the connection every evening.",
        "at": "2026-11-24T17:02:15Z",
        "fallback": False,
    },
]
CALLER: Final[dict[str, Any]] = {
    "bot_number": "+14155550000",
    "caller_number": "+14155551234",
    "first_seen_at": "2026-11-02T09:14:03Z",
    "last_seen_at": "2026-11-24T17:05:40Z",
    "call_count": 3,
    "last_topic": "My router drops the connection every evening",
    "summary": "Ada, account 99812. Her router drops most evenings; a technician visit was promised.",
    "profile": {
        "name": "Ada",
        "open_issues": ["router drops every evening"],
        "promises": [],
        "preferences": [],
    },
    "next_greeting": "Welcome back, Ada! Did the technician fix your router?",
}
EXPORT: Final[dict[str, Any]] = {"caller": CALLER, "calls": [{"call": CALL, "turns": TURNS}]}

BRIEF: Final[dict[str, Any]] = {
    "bot_number": "+14155550000",
    "caller_number": "+14155551234",
    "returning": True,
    "call_count": 2,
    "last_topic": "my router drops every evening",
    "profile": {"name": "Ada", "open_issues": ["router drops every evening"]},
    "summary": "Ada, account 99812: router drops every evening; a technician was promised.",
    "recent_calls": [
        {
            "call_id": "c-2",
            "started_at": "2026-11-24T18:02:00Z",
            "summary": "Router dropped again; technician visit booked for Friday.",
        }
    ],
    "brief": 'This caller has called 2 time(s) before. Last time they said: "my router '
    'drops every evening".\n\nWhat you know about this caller: Name: Ada. ...',
}

SEARCH_RESULTS: Final[dict[str, Any]] = {
    "query": "what was the serial of my dishwasher?",
    "results": [
        {
            "call_id": "c-17",
            "started_at": "2026-03-02T09:14:00Z",
            "kind": "turn",
            "role": "caller",
            "seq": 2,
            "text": "The serial number on my dishwasher is DW-4471-X.",
            "rank": 1.0,
        },
        {
            "call_id": "c-17",
            "started_at": "2026-03-02T09:14:00Z",
            "kind": "summary",
            "role": None,
            "seq": None,
            "text": "The caller's dishwasher (serial DW-4471-X) leaks; an engineer visit was booked.",
            "rank": 1.0,
        },
    ],
}
