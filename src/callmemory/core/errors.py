"""Domain errors: each names what is wrong with the input so the HTTP edge can answer with a 4xx."""

from __future__ import annotations


class CallMemoryError(Exception):
    """A request the core refuses. `code` is stable for machines, the message is for people."""

    code: str = "invalid_request"
    status: int = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidEvent(CallMemoryError):
    code = "invalid_event"
    status = 422


class InvalidPhoneNumber(CallMemoryError):
    code = "invalid_phone_number"
    status = 422


class CallNotStarted(CallMemoryError):
    code = "call_not_started"
    status = 409


class CallAlreadyEnded(CallMemoryError):
    code = "call_already_ended"
    status = 409


class CallerMismatch(CallMemoryError):
    code = "caller_mismatch"
    status = 409


class StoreUnavailable(CallMemoryError):
    """A store failed; the platform should retry, so this is the one 5xx the core asks for."""

    code = "store_unavailable"
    status = 503


class LiveStateLost(StoreUnavailable):
    """A call's live state, which this request had found or written, is gone: a Redis failover can lose
    writes it had acknowledged. Not the caller's fault and not final: the platform's retry opens the
    call again (a ringing anew, a speech turn by reopening it) and records the event."""

    def __init__(self, call_id: str) -> None:
        super().__init__(f"call {call_id!r} lost its live state under this event; retry the event")


class MalformedBody(CallMemoryError):
    code = "malformed_body"
    status = 400


class NotFound(CallMemoryError):
    """Also the answer for what exists but is not the asker's: a 403 would confirm that it exists."""

    code = "not_found"
    status = 404


class ShuttingDown(CallMemoryError):
    """The service stopped before the request finished (SIGTERM after the grace period); retry it."""

    code = "shutting_down"
    status = 503


class UnstorableInput(CallMemoryError):
    """A NUL or a lone surrogate in a string, or JSON nested too deep: nothing a store could hold."""

    code = "unstorable_input"
    status = 422


class Unauthorized(CallMemoryError):
    """The request does not prove it comes from whom it must: a bad signature, token or key."""

    code = "unauthorized"
    status = 401


class Forbidden(CallMemoryError):
    """Signed, but not by the platform's key (Twilio's convention is 403)."""

    code = "forbidden"
    status = 403


class NotEnabled(CallMemoryError):
    """A platform's routes while it is not configured: as if they did not exist."""

    code = "not_found"
    status = 404


class PayloadTooLarge(CallMemoryError):
    code = "payload_too_large"
    status = 413
