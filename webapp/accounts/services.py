"""Signups, throttled per IP address (TERRAIN_MAX_SIGNUPS_PER_IP_PER_HOUR)."""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.accounts.models import SignupRecord
from webapp.jobs.limits import LimitExceeded

WINDOW = timedelta(hours=1)


def client_ip(request) -> str:
    # REMOTE_ADDR only: a client-supplied X-Forwarded-For would let anyone pick their IP.
    return request.META.get("REMOTE_ADDR") or "0.0.0.0"


def check_signup(*, ip_address: str) -> None:
    """Raise LimitExceeded when this address made too many accounts in the last hour."""
    limit = settings.TERRAIN_MAX_SIGNUPS_PER_IP_PER_HOUR
    recent = SignupRecord.objects.filter(ip_address=ip_address, created_at__gte=timezone.now() - WINDOW)
    if recent.count() >= limit:
        oldest = recent.order_by("created_at").values_list("created_at", flat=True).first()
        retry_after = max(1, math.ceil((oldest + WINDOW - timezone.now()).total_seconds()))
        raise LimitExceeded(field="username", retry_after=retry_after,
                            message=f"at most {limit} new accounts per hour from one address; try again in {math.ceil(retry_after / 60)} min.")


@transaction.atomic
def signup_create(*, form, ip_address: str):
    """Save a valid UserCreationForm, counting it against its address."""
    check_signup(ip_address=ip_address)
    user = form.save()
    SignupRecord.objects.create(ip_address=ip_address)
    return user


def axes_username(request, credentials) -> str:
    """The username django-axes records a failed login under (AXES_USERNAME_CALLABLE): as typed,
    cut to the length a username may have and without NUL, which PostgreSQL refuses in text
    (a 200 KB or NUL-laden username is a failed login, never a 500)."""
    name = (credentials or {}).get("username")
    if name is None and request is not None:
        name = request.POST.get("username", "")
    return str(name or "").replace("\x00", "")[:150]
