"""`Authorization: Bearer <token>` on the JSON API, for scripts and notebooks.

A bearer request is authenticated by its token alone: the session is ignored and
CSRF does not apply (a browser never adds this header on its own, so it cannot be
forged cross-site). Cookie requests keep Django's CSRF checks. A read-scoped token
may only use safe methods.
"""

from django.http import JsonResponse

from webapp.accounts.tokens import TokenInvalid, token_authenticate

API_PREFIX = "/api/"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def bearer_of(header: str) -> str | None:
    scheme, _, credentials = (header or "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _refuse(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="terrain"'
    return response


class BearerTokenMiddleware:
    """Runs after AuthenticationMiddleware and before any view (so before CsrfViewMiddleware.process_view)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = bearer_of(request.headers.get("Authorization", ""))
        if raw is None or not request.path.startswith(API_PREFIX):
            request.api_token = None
            return self.get_response(request)
        try:
            token = token_authenticate(raw)
        except TokenInvalid as exc:
            return _refuse(401, str(exc))
        if request.method not in SAFE_METHODS and not token.can_write:
            return _refuse(403, f"token {token.name!r} is read-only: {request.method} needs a token with write scope")
        request.user = token.user
        request.api_token = token
        request._dont_enforce_csrf_checks = True
        return self.get_response(request)
