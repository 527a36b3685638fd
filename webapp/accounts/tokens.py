"""Personal API tokens: create, revoke, authenticate.

A token reads `trn_<prefix>_<secret>`: the prefix (public, indexed) finds the row,
the secret (32 random bytes) is compared by its SHA-256, so a database leak gives
away no usable token. The whole token is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from webapp.accounts.models import ApiToken, TokenScope

TOKEN_PREFIX = "trn_"
MAX_TOKENS_PER_USER = 50
# last_used_at is a hint for the owner, not an audit log: refresh it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenInvalid(Exception):
    """The bearer token cannot be used; the message says why (unknown, revoked, expired)."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the full bearer string: shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user, name: str, scope: str = TokenScope.WRITE, expires_in_days: int | None = None) -> IssuedToken:
    if scope not in TokenScope.values:
        raise ValueError(f"scope must be one of {', '.join(TokenScope.values)}")
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_TOKENS_PER_USER:
        raise ValueError(f"at most {MAX_TOKENS_PER_USER} active tokens; revoke one first")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100] or "token", prefix=prefix, secret_hash=_hash(secret), scope=scope, expires_at=expires_at
    )
    return IssuedToken(token=token, secret=f"{TOKEN_PREFIX}{prefix}_{secret}")


def token_revoke(*, user, token_id: int) -> bool:
    return bool(ApiToken.objects.filter(user=user, pk=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def tokens_of_user(*, user):
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")


def token_authenticate(raw: str) -> ApiToken:
    """The live token behind a bearer string, or TokenInvalid saying why not."""
    raw = (raw or "").strip()
    prefix, sep, secret = raw.removeprefix(TOKEN_PREFIX).partition("_")
    if not raw.startswith(TOKEN_PREFIX) or not sep or not secret:
        raise TokenInvalid("malformed API token (expected trn_<prefix>_<secret>)")
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(secret)):
        raise TokenInvalid("unknown API token")
    if token.revoked:
        raise TokenInvalid("this API token was revoked")
    if token.expired:
        raise TokenInvalid("this API token expired; create a new one at /accounts/tokens/")
    if not token.user.is_active:
        raise TokenInvalid("this API token's account is disabled")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
