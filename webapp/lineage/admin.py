from django.contrib import admin

from webapp.lineage.models import LineageGraph


@admin.register(LineageGraph)
class LineageGraphAdmin(admin.ModelAdmin):
    list_display = ("name", "experiment", "source", "num_nodes", "num_edges", "num_families", "created_at")
    list_filter = ("source",)
    search_fields = ("name", "slug", "experiment__title")
    raw_id_fields = ("experiment", "created_by")
    readonly_fields = ("num_nodes", "num_edges", "num_roots", "num_families", "num_placeholders", "signature")
    exclude = ("report", "drift", "traits")
