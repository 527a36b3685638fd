from django.contrib import admin
from django.utils import timezone

from webapp.accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff see who holds which token (never a secret: only its hash is stored) and can revoke one."""

    list_display = ("name", "user", "prefix", "scope", "expires_at", "last_used_at", "revoked_at", "created_at")
    list_filter = ("scope",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "prefix", "secret_hash", "last_used_at", "created_at")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())

    def has_add_permission(self, request):
        return False  # tokens are created by their owner, who alone sees the secret
