from django.contrib import admin

from webapp.runs.models import Run, RunCheckpoint


class RunCheckpointInline(admin.TabularInline):
    model = RunCheckpoint
    fields = ("step", "source", "checkpoint", "num_parameters", "sha256")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("name", "experiment", "owner", "created_at", "finished_at")
    search_fields = ("name", "experiment__title", "owner__username")
    raw_id_fields = ("experiment", "owner")
    inlines = [RunCheckpointInline]
