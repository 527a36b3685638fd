from django.contrib import admin

from webapp.showcase.models import ShowcaseEntry


@admin.register(ShowcaseEntry)
class ShowcaseEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "family", "order", "job", "url")
    list_editable = ("order",)
    list_filter = ("family",)
    search_fields = ("title", "note", "key")
    raw_id_fields = ("job",)
