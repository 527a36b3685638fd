import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.catalog.visibility import Visibility


def new_slug() -> str:
    # 12 url-safe characters: unguessable enough for "unlisted" links.
    return secrets.token_urlsafe(9)


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Experiment(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="experiments")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments")
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    featured = models.BooleanField(default=False, help_text="Shown first on the home page.")
    curated_order = models.PositiveIntegerField(default=1000, help_text="Lower comes first among equals.")
    source_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.CASCADE, related_name="derived_experiments",
        help_text="The job whose models this experiment holds (a sweep's); its visibility is then the job's.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-featured", "curated_order", "-created_at"]
        indexes = [models.Index(fields=["visibility", "featured", "curated_order"])]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("experiment_detail", args=[self.slug])


class Relation(models.TextChoices):
    FINETUNE = "finetune", "Fine-tune"
    MERGE = "merge", "Merge"
    PRUNE = "prune", "Prune"
    QUANTIZE = "quantize", "Quantize"
    ADAPTER = "adapter", "Adapter"


def checkpoint_upload_path(instance, filename):
    return f"checkpoints/{instance.slug}/{filename}"


class ModelSource(models.TextChoices):
    BUILTIN = "builtin", "Built-in"
    HUGGINGFACE = "huggingface", "Hugging Face"
    LORA = "lora", "LoRA"
    ONNX = "onnx", "ONNX"


class Checkpoint(models.Model):
    slug = models.CharField(max_length=32, unique=True, default=new_slug, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="checkpoints")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=checkpoint_upload_path, max_length=300)
    trajectory_file = models.FileField(upload_to=checkpoint_upload_path, max_length=300, blank=True)
    spec = models.JSONField(help_text="Architecture spec understood by analysis.zoo.build.")
    dataset = models.CharField(max_length=64, blank=True)
    dataset_options = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    relation = models.CharField(max_length=10, choices=Relation.choices, blank=True)
    # A merge has several parents: `parent` holds the first (the base when there is one), this holds them all.
    merge_parents = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="merge_children")
    metrics = models.JSONField(default=dict, blank=True)
    num_parameters = models.PositiveBigIntegerField(default=0)
    # where the model came from (analysis.sources); file is the upload as it came (a .zip folder or an .onnx)
    source = models.CharField(max_length=12, choices=ModelSource.choices, default=ModelSource.BUILTIN)
    model_info = models.JSONField(default=dict, blank=True, help_text="Architecture, model type, head, input kind.")
    sha256 = models.CharField(max_length=64, blank=True)
    created_by_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="checkpoints")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(parent__isnull=True) | ~models.Q(relation=""),
                name="checkpoint_parent_needs_relation",
            )
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("checkpoint_detail", args=[self.slug])


def dataset_upload_path(instance, filename):
    return f"datasets/{instance.slug}/{filename}"


class DatasetUpload(models.Model):
    """A user's own evaluation data (X, y), validated by analysis.data before it is kept."""

    slug = models.CharField(max_length=32, unique=True, default=new_slug, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=dataset_upload_path, max_length=300)
    info = models.JSONField(default=dict, help_text="Shapes, dtypes, task and sample counts.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name
