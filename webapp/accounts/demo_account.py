"""The demo account: the owner of every piece of demo content (the quick start's login)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "terrain-demo"


def demo_user(*, dev_accounts: bool):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=DEMO_USERNAME)
    if created or dev_accounts:
        # On the local quick start the demo user may curate the catalog in the admin.
        user.is_staff = user.is_superuser = dev_accounts
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user
