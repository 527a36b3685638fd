from django.db import models
from django.db.models import Q


class Visibility(models.TextChoices):
    """Who may open a thing: private = owner (and staff); unlisted = anyone with the link;
    public = anyone, and it is listed in the catalog."""

    PRIVATE = "private", "Private"
    UNLISTED = "unlisted", "Unlisted"
    PUBLIC = "public", "Public"


OPEN = (Visibility.PUBLIC, Visibility.UNLISTED)


def open_to(user, prefix: str = "") -> Q:
    """Rows (reached through `prefix`, e.g. "experiment__") with a visibility/owner pair that `user` may open."""
    visible = Q(**{f"{prefix}visibility__in": OPEN})
    if user is not None and user.is_authenticated:
        if user.is_staff:
            # Everything. Not an empty Q(): `Q(a) | Q()` is just Q(a) in Django, which would hide rows from staff.
            return Q(pk__isnull=False)
        visible |= Q(**{f"{prefix}owner": user})
    return visible
