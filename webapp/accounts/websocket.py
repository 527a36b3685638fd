"""Websocket authentication by API token (`?token=...` or an Authorization header),
for scripts following a job; without one, the session cookie applies as before."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from webapp.accounts.middleware import bearer_of
from webapp.accounts.tokens import TokenInvalid, token_authenticate


def _raw_token(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return bearer_of(value.decode("latin-1"))
    values = parse_qs(scope.get("query_string", b"").decode()).get("token")
    return values[0] if values else None


@database_sync_to_async
def _user_of(raw: str):
    try:
        return token_authenticate(raw).user
    except TokenInvalid:
        return None


class TokenAuthMiddleware:
    """Put inside AuthMiddlewareStack: a valid token replaces the session's user; an invalid
    one leaves an anonymous user (private jobs then close with 4404, like for strangers)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        raw = _raw_token(scope)
        if raw is not None:
            from django.contrib.auth.models import AnonymousUser

            user = await _user_of(raw)
            scope = {**scope, "user": user or AnonymousUser()}
        return await self.inner(scope, receive, send)
