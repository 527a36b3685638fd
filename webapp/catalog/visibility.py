from django.db import models


class Visibility(models.TextChoices):
    """Who may open a thing: private = owner (and staff); unlisted = anyone with the link;
    public = anyone, and it is listed in the catalog."""

    PRIVATE = "private", "Private"
    UNLISTED = "unlisted", "Unlisted"
    PUBLIC = "public", "Public"
