from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "webapp.lineage"
    label = "lineage"

    def ready(self):
        from webapp.lineage import catalog_sync

        catalog_sync.connect()
