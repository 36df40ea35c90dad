"""One error hierarchy: every refusal the service gives has a stable code (DESIGN §5)."""

from typing import Any


class BorderError(Exception):
    """A refusal with a stable ``code``, an HTTP ``status`` and a ``detail`` for people.

    ``extra`` carries structured fields added to the response body (``field``, ``failed``,
    ``candidates``...). Details and extras must never hold personal data: they are logged.
    """

    code = "invalid_request"
    status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class InvalidRequest(BorderError):
    code = "invalid_request"
    status = 422


class Unauthorized(BorderError):
    code = "unauthorized"
    status = 401


class Forbidden(BorderError):
    code = "forbidden"
    status = 403


class NotFound(BorderError):
    code = "not_found"
    status = 404

    def __init__(self, resource: str, resource_id: object) -> None:
        super().__init__(f"no {resource} with id {resource_id}")
        self.resource = resource


class NoLongerHeld(NotFound):
    """A record whose sealed contents were crypto-shredded (an erasure took its key): it
    is answered like one never held, and the detail says so plainly."""

    def __init__(self, resource: str, resource_id: object) -> None:
        BorderError.__init__(self, f"the {resource} {resource_id} is no longer held")
        self.resource = resource


class RouteNotFound(BorderError):
    code = "not_found"
    status = 404


class MethodNotAllowed(BorderError):
    code = "invalid_request"
    status = 405


class Conflict(BorderError):
    code = "conflict"
    status = 409


class RateLimited(BorderError):
    code = "rate_limited"
    status = 429


class Unavailable(BorderError):
    code = "unavailable"
    status = 503


class ConfigurationError(Exception):
    """The service cannot start as configured; the message says what to change."""
