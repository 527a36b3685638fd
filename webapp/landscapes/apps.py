from django.apps import AppConfig


class LandscapesConfig(AppConfig):
    name = "webapp.landscapes"
    label = "landscapes"
    verbose_name = "Loss landscapes"
