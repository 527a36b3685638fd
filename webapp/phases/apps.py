from django.apps import AppConfig


class PhasesConfig(AppConfig):
    name = "webapp.phases"
    label = "phases"
