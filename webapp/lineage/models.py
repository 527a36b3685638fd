"""Lineage graphs in the database: one imported graph, its models, edges and families.

A graph is written once by an import (``services.py``) and then only read, so
per-family statistics are stored rather than recomputed, and every read the
pages make ("the nodes of family 7", "the edges of family 7", "which family is
model X in") is one indexed query.  Sized for the Hugging Face snapshot:
~35k nodes, ~23k edges and ~12k families per graph.

Visibility is the owning Experiment's: a graph has no visibility of its own.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.catalog.models import new_slug

# The library's own field limit (Hub ids are at most 96 characters).  PostgreSQL's btree
# limit (~2.7 kB per entry) holds for any id of 1,000 characters that is not mostly multi-byte.
MAX_MODEL_ID_CHARS = 1000


class GraphSource(models.TextChoices):
    HF_SNAPSHOT = "hf_snapshot", "Hugging Face snapshot"
    UPLOAD = "upload", "Uploaded files"
    HUB = "hub", "Hugging Face Hub"
    CATALOG = "catalog", "Catalog checkpoints"
    MIXED = "mixed", "Several sources"


class EdgeRelation(models.TextChoices):
    FINETUNE = "finetune", "fine-tune"
    ADAPTER = "adapter", "adapter"
    QUANTIZED = "quantized", "quantized"
    MERGE = "merge", "merge"
    UNKNOWN = "unknown", "unknown"


class LineageGraph(models.Model):
    slug = models.SlugField(max_length=80, unique=True, default=new_slug)
    experiment = models.ForeignKey("catalog.Experiment", on_delete=models.CASCADE, related_name="lineage_graphs")
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=GraphSource.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    num_nodes = models.PositiveIntegerField(default=0)
    num_edges = models.PositiveIntegerField(default=0)
    num_roots = models.PositiveIntegerField(default=0)
    num_families = models.PositiveIntegerField(default=0)
    num_placeholders = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True, help_text="ImportReport.to_dict() plus a summary line.")
    drift = models.JSONField(default=dict, blank=True, help_text="Whole-graph trait drift, computed at import.")
    traits = models.JSONField(default=list, blank=True, help_text="Node attributes a tree can be coloured by.")
    signature = models.CharField(max_length=64, blank=True, help_text="Catalog graphs: digest of the checkpoint links.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["experiment", "source"])]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("lineage:graph", args=[self.slug])


class Family(models.Model):
    """A weakly connected component; ``index`` 0 is the largest (the library's order)."""

    graph = models.ForeignKey(LineageGraph, on_delete=models.CASCADE, related_name="families")
    index = models.PositiveIntegerField()
    label = models.CharField(max_length=MAX_MODEL_ID_CHARS, help_text="Its root with the most children.")
    size = models.PositiveIntegerField()
    num_edges = models.PositiveIntegerField(default=0)
    depth = models.PositiveIntegerField(default=0)
    max_branching = models.PositiveIntegerField(default=0)
    num_roots = models.PositiveIntegerField(default=0)
    num_merges = models.PositiveIntegerField(default=0)
    num_placeholders = models.PositiveIntegerField(default=0)
    roots = models.JSONField(default=list, help_text="Root ids (the first 100).")
    relation_counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["graph", "index"]
        constraints = [models.UniqueConstraint(fields=["graph", "index"], name="lineage_family_unique_index")]
        indexes = [
            models.Index(fields=["graph", "-size"]),
            models.Index(fields=["graph", "-depth"]),
            models.Index(fields=["graph", "-max_branching"]),
            models.Index(fields=["graph", "label"]),
        ]

    def __str__(self):
        return f"{self.label} ({self.size})"

    def get_absolute_url(self):
        return reverse("lineage:family", args=[self.graph.slug, self.index])


class ModelNode(models.Model):
    graph = models.ForeignKey(LineageGraph, on_delete=models.CASCADE, related_name="nodes")
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="nodes")
    model_id = models.CharField(max_length=MAX_MODEL_ID_CHARS)
    placeholder = models.BooleanField(default=False, help_text="Known only as someone's parent.")
    generation = models.PositiveIntegerField(default=0, help_text="Longest path from a root.")
    attrs = models.JSONField(default=dict, blank=True)
    checkpoint = models.ForeignKey("catalog.Checkpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["graph", "model_id"], name="lineage_node_unique_id")]

    def __str__(self):
        return self.model_id


class ModelEdge(models.Model):
    """parent -> child; ``family`` is denormalised so a family's edges are one indexed read."""

    graph = models.ForeignKey(LineageGraph, on_delete=models.CASCADE, related_name="edges")
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="edges")
    parent = models.ForeignKey(ModelNode, on_delete=models.CASCADE, related_name="child_edges")
    child = models.ForeignKey(ModelNode, on_delete=models.CASCADE, related_name="parent_edges")
    relation = models.CharField(max_length=10, choices=EdgeRelation.choices, default=EdgeRelation.UNKNOWN)
    source = models.CharField(max_length=200, blank=True, help_text="Where the fact came from (file, hub, catalog).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["parent", "child"], name="lineage_edge_unique_pair")]

    def __str__(self):
        return f"{self.parent_id} -> {self.child_id} ({self.relation})"


def lineage_upload_path(instance, filename):
    return f"lineage-uploads/{instance.slug}/{filename}"


class LineageUpload(models.Model):
    """An edge list or model card sent to the import form: checked in the request, kept when the
    import job is submitted (in the same transaction) and parsed by the worker, which reads it
    through the storage API (so a worker on another machine can)."""

    class Kind(models.TextChoices):
        EDGES = "edges", "edge list"
        CARD = "card", "model card"

    slug = models.CharField(max_length=32, unique=True, default=new_slug, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lineage_uploads")
    name = models.CharField(max_length=200, help_text="The file's name as uploaded (the report names rows by it).")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    file = models.FileField(upload_to=lineage_upload_path, max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name
