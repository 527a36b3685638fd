from django.db import models


class SignupRecord(models.Model):
    """One account created from an IP address: the signup throttle counts these (in the
    database, so every web process sees the same count)."""

    ip_address = models.GenericIPAddressField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["ip_address", "created_at"])]
