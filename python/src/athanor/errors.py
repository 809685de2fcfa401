"""Typed exceptions carrying the server's stable error ``code`` and its message.

The server answers every refusal with ``{"error": {"code", "message"}}``; the code is one of the
registry the CLI and the server share, and the message says what to do next. Each code maps to
one exception class below, so callers can catch a family (``NotFound``) or look at ``.code``.
"""

from __future__ import annotations


class AthanorError(Exception):
    """Base of every error the client raises.

    ``code`` is the server's stable code (e.g. ``invalid_scope``), ``message`` its text, and
    ``status`` the HTTP status (``None`` when no answer came, e.g. ``server_unreachable``).
    """

    code: str
    message: str
    status: int | None

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message
        self.status = status


class InvalidArgument(AthanorError):
    """The request was refused as malformed: a bad scope, a network that fails the schema, a bad option."""


class Unauthenticated(AthanorError):
    """The identifier or key was not accepted (or a token expired and could not be renewed)."""


class Forbidden(AthanorError):
    """Authenticated, but not allowed (a role, or a quota)."""


class NotFound(AthanorError):
    """No such object in the caller's scopes. Objects in scopes the caller lacks look the same."""


class Conflict(AthanorError):
    """The object is not in a state that allows this (a status change, a stale lease)."""


class TooLarge(AthanorError):
    """A request body or a count went over one of the server's limits."""


class RateLimited(AthanorError):
    """Too many requests (token requests are rate limited)."""


class Unavailable(AthanorError):
    """The server cannot do this now (maintenance, a dependency down); retried by the client first."""


class Maintenance(Unavailable):
    """The server is in maintenance mode: writes are refused until it ends."""


class ServerUnreachable(Unavailable):
    """No connection to the server could be made."""


class TimedOut(AthanorError):
    """The server stayed silent for longer than the client's timeout."""


class ChecksumMismatch(AthanorError):
    """Downloaded bytes did not hash to the sha256 the server listed; nothing was kept. Run again."""


class InternalError(AthanorError):
    """The server failed unexpectedly; its log has the details."""


_by_code: dict[str, type[AthanorError]] = {
    "invalid_argument": InvalidArgument,
    "invalid_scope": InvalidArgument,
    "invalid_identifier": InvalidArgument,
    "invalid_key": InvalidArgument,
    "validation_failed": InvalidArgument,
    "unauthenticated": Unauthenticated,
    "forbidden": Forbidden,
    "waiting_tasks_quota_exceeded": Forbidden,
    "networks_quota_exceeded": Forbidden,
    "not_found": NotFound,
    "identity_not_found": NotFound,
    "conflict": Conflict,
    "stale_lease": Conflict,
    "invalid_transition": Conflict,
    "body_too_large": TooLarge,
    "limit_exceeded": TooLarge,
    "rate_limited": RateLimited,
    "maintenance": Maintenance,
    "server_unreachable": ServerUnreachable,
    "timed_out": TimedOut,
    "checksum_mismatch": ChecksumMismatch,
    "internal": InternalError,
}

_by_status: dict[int, str] = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "body_too_large",
    429: "rate_limited",
    503: "maintenance",
    504: "timed_out",
}


def error_for(code: str | None, message: str, status: int | None = None) -> AthanorError:
    """The typed exception for a server code (or, lacking one, for the HTTP status)."""
    if code is None:
        code = _by_status.get(status or 0)
        if code is None:
            code = "invalid_argument" if status and 400 <= status < 500 else "internal"
    cls = _by_code.get(code)
    if cls is None:
        # Codes the client does not know by name keep their family through the status.
        if status == 503:
            cls = Unavailable
        elif status is not None and 400 <= status < 500:
            cls = _by_code.get(_by_status.get(status, ""), InvalidArgument)
        else:
            cls = InternalError
    return cls(code, message, status)
