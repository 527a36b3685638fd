from django.apps import AppConfig


class ShowcaseConfig(AppConfig):
    name = "webapp.showcase"
    label = "showcase"
    verbose_name = "Showcase (the demo's finished results)"
