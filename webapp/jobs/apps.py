from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "webapp.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        # Job kinds register themselves on import; the registry must be full in every process.
        from webapp.jobs import kinds

        kinds.autodiscover()
