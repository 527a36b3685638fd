from django.contrib import admin

from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobEvent


class JobEventInline(admin.TabularInline):
    model = JobEvent
    fields = ("seq", "kind", "payload", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ("-seq",)

    def get_queryset(self, request):
        # A long landscape has thousands of events; the newest 50 tell the story.
        queryset = super().get_queryset(request)
        ids = list(queryset.order_by("-seq").values_list("pk", flat=True)[:50])
        return queryset.filter(pk__in=ids)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "kind", "status", "progress", "owner", "visibility", "queue", "device", "created_at")
    list_filter = ("kind", "status", "visibility", "queue", "created_at")
    search_fields = ("slug", "title", "owner__username", "error")
    raw_id_fields = ("owner", "experiment")
    readonly_fields = ("slug", "last_seq", "attempts", "started_at", "finished_at", "created_at", "device")
    ordering = ("-created_at",)
    inlines = [JobEventInline]
    actions = ["publish", "unlist", "make_private"]

    @admin.action(description="Make public")
    def publish(self, request, queryset):
        self.message_user(request, f"{queryset.update(visibility=Visibility.PUBLIC)} job(s) made public.")

    @admin.action(description="Make unlisted")
    def unlist(self, request, queryset):
        self.message_user(request, f"{queryset.update(visibility=Visibility.UNLISTED)} job(s) made unlisted.")

    @admin.action(description="Make private")
    def make_private(self, request, queryset):
        self.message_user(request, f"{queryset.update(visibility=Visibility.PRIVATE)} job(s) made private.")
