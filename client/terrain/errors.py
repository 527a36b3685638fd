"""Exceptions the client raises; each says which field or what limit is at fault."""

from __future__ import annotations


class TerrainError(Exception):
    """Any error reported by the Terrain server or the client."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, errors: dict[str, list[str]] | None = None):
        self.status = status
        self.errors = errors or {}
        super().__init__(message)


class ValidationError(TerrainError, ValueError):
    """The server rejected a parameter; `errors` maps each field name to its messages."""

    @property
    def fields(self) -> list[str]:
        return sorted(self.errors)


class AuthenticationError(TerrainError):
    """No token, or an unknown, revoked or expired one (HTTP 401)."""


class PermissionDenied(TerrainError):
    """The token may not do this (a read-only token writing, someone else's run) (HTTP 403)."""


class NotFound(TerrainError, LookupError):
    """No such object, or one you may not see (HTTP 404)."""


class Conflict(TerrainError):
    """The request clashes with what is stored (HTTP 409), e.g. a different checkpoint for a logged step."""


class RateLimited(TerrainError):
    """Over a per-user limit (HTTP 429); `retry_after` is the server's advice in seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class JobFailed(TerrainError):
    """The job ended as failed or cancelled; the message is the server's error."""


class UploadError(TerrainError):
    """Some logged data could not be delivered; `failures` lists what and why."""

    def __init__(self, message: str, failures: list[str]):
        self.failures = failures
        super().__init__(message)


def from_response(status: int, body: dict, retry_after: str | None = None) -> TerrainError:
    message = str(body.get("error") or f"HTTP {status}")
    errors = body.get("errors") or {}
    # The server's error often already is "field: message"; add the fields only where it does not say them.
    if errors and not all(str(m) in message for messages in errors.values() for m in messages):
        message += ": " + "; ".join(f"{field}: {' '.join(map(str, messages))}" for field, messages in errors.items())
    if status == 400:
        return ValidationError(message, status=status, errors=errors)
    kind = {401: AuthenticationError, 403: PermissionDenied, 404: NotFound, 409: Conflict}.get(status)
    if status == 429:
        try:
            seconds = float(retry_after or 1)
        except ValueError:
            seconds = 1.0
        return RateLimited(message, retry_after=seconds, status=status, errors=errors)
    return (kind or TerrainError)(message, status=status, errors=errors)
