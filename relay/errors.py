"""The errors a client can cause, each with an HTTP status and a stable code.

One handler (relay/app.py) renders them as {"error": code, "message": text};
the live socket closes with 4000 + status and the message as reason.
"""

from __future__ import annotations


class PorchError(Exception):
    status = 500
    code = "internal"

    def __init__(
        self, message: str, *, retry_after: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.reason = reason  # a finer code for clients to pick their own wording

    @property
    def close_code(self) -> int:
        # 4400 for every malformed frame, whatever HTTP would have said (400 or 422).
        return 4400 if self.status == 422 else 4000 + self.status


class InvalidRequest(PorchError):
    status = 400
    code = "invalid_request"


class UnprocessableRequest(InvalidRequest):
    """Well-formed JSON whose fields have the wrong type or value."""

    status = 422


class InvalidToken(PorchError):
    status = 401
    code = "invalid_token"


class Unauthorized(PorchError):
    """No signed-in inbox session (missing, ended or revoked)."""

    status = 401
    code = "unauthorized"


class Forbidden(PorchError):
    """A request the inbox refuses: another site's page, or no valid CSRF token."""

    status = 403
    code = "forbidden"


class SitesChanged(PorchError):
    """An inbox socket's owner gained or lost a site: it reconnects for the new list."""

    status = 409
    code = "sites_changed"


class ForbiddenOrigin(PorchError):
    status = 403
    code = "forbidden_origin"


class NotFound(PorchError):
    status = 404
    code = "not_found"


class Conflict(PorchError):
    """What was asked clashes with what exists (a messaging account another site uses)."""

    status = 409
    code = "conflict"


class TooLarge(PorchError):
    status = 413
    code = "too_large"


class UnsupportedType(PorchError):
    """A file whose content is not a kind the site takes (judged from the bytes)."""

    status = 415
    code = "unsupported_type"


class Unavailable(PorchError):
    status = 503
    code = "unavailable"


class StoreUnavailable(Unavailable):
    """The database cannot be reached (PostgreSQL restarting): retry; nothing was lost."""

    code = "store_unavailable"

    def __init__(self, message: str = "the database is unavailable; try again shortly") -> None:
        super().__init__(message, retry_after=1)


class RateLimited(PorchError):
    status = 429
    code = "rate_limited"


class ConfigError(Exception):
    """Bad setting or CLI argument: the CLI prints the message and exits 2."""


class CommandError(Exception):
    """A one-line failure the user can act on: `porch` prints it and exits 1."""
