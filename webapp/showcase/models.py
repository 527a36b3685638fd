"""One finished example per capability, shown on the home page and listed by the API."""

from django.db import models


class Family(models.TextChoices):
    LANDSCAPES = "landscapes", "Loss landscapes"
    PHASES = "phases", "Phase diagrams"
    LINEAGE = "lineage", "Model families"


class ShowcaseEntry(models.Model):
    key = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    note = models.TextField(help_text="What you are looking at, in a few sentences.")
    family = models.CharField(max_length=16, choices=Family.choices)
    order = models.PositiveIntegerField(default=100)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    url = models.CharField(max_length=300, blank=True, help_text="Where the result lives when it is not a job (e.g. a lineage graph).")
    run_url = models.CharField(max_length=1000, blank=True, help_text="The form that makes one like it, pre-filled.")

    class Meta:
        ordering = ["order", "key"]
        verbose_name_plural = "showcase entries"

    def __str__(self):
        return self.title
