"""Staff curate the public catalog here: publish, feature, order, tag."""

from django.contrib import admin

from webapp.catalog import services
from webapp.catalog.models import Checkpoint, Experiment, Tag
from webapp.catalog.visibility import Visibility


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


class CheckpointInline(admin.TabularInline):
    model = Checkpoint
    fields = ("name", "dataset", "relation", "parent", "num_parameters")
    readonly_fields = ("num_parameters",)
    raw_id_fields = ("parent",)
    extra = 0
    show_change_link = True


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "visibility", "featured", "curated_order", "created_at")
    list_editable = ("curated_order",)
    list_filter = ("visibility", "featured", "tags", "created_at")
    search_fields = ("title", "slug", "description", "owner__username")
    filter_horizontal = ("tags",)
    prepopulated_fields = {"slug": ("title",)}
    ordering = ("-featured", "curated_order", "-created_at")
    raw_id_fields = ("owner",)
    inlines = [CheckpointInline]
    actions = ["publish", "unpublish", "feature", "unfeature"]

    @admin.action(description="Publish (make public)")
    def publish(self, request, queryset):
        count = services.experiments_set_visibility(experiments=queryset, visibility=Visibility.PUBLIC)
        self.message_user(request, f"Published {count} experiment(s).")

    @admin.action(description="Unpublish (make private)")
    def unpublish(self, request, queryset):
        count = services.experiments_set_visibility(experiments=queryset, visibility=Visibility.PRIVATE)
        self.message_user(request, f"Unpublished {count} experiment(s).")

    @admin.action(description="Feature on the home page")
    def feature(self, request, queryset):
        count = services.experiments_set_featured(experiments=queryset, featured=True)
        self.message_user(request, f"Featured {count} experiment(s).")

    @admin.action(description="Stop featuring")
    def unfeature(self, request, queryset):
        count = services.experiments_set_featured(experiments=queryset, featured=False)
        self.message_user(request, f"Unfeatured {count} experiment(s).")


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("name", "experiment", "dataset", "relation", "parent", "num_parameters", "created_at")
    list_filter = ("dataset", "relation", "experiment__visibility", "created_at")
    search_fields = ("name", "slug", "experiment__title", "dataset")
    raw_id_fields = ("experiment", "parent", "merge_parents", "created_by_job")
    readonly_fields = ("slug", "sha256", "created_at")
    ordering = ("-created_at",)
