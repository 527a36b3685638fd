"""The JSON API's bodies as pydantic models: what the generated OpenAPI document says each route takes and returns.

The views build their bodies with the selectors (as the pages do) and return them unchanged; these
models only describe them, and the schemathesis run in the suite holds the two together.  The job
submission is a union over the registered kinds, discriminated by `kind`, each with its own params model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from webapp.jobs import kinds

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Visibility = Literal["private", "unlisted", "public"]


class Body(BaseModel):
    """A response body: exactly these keys (additionalProperties: false), so the schemathesis run catches an undocumented one."""

    model_config = ConfigDict(extra="forbid")


class Error(Body):
    error: str
    errors: dict[str, list[str]] = Field(default_factory=dict, description="messages by field (absent when none)")


class JobState(Body):
    slug: str
    kind: str
    title: str
    status: Status
    progress: float = Field(ge=0, le=1)
    device: str
    attempts: int
    error: str
    result: dict[str, Any] | None
    last_seq: int
    created_at: str | None
    finished_at: str | None


class JobCreated(JobState):
    url: str = Field(description="the result page")


class JobDetail(JobCreated):
    params: dict[str, Any]


class JobList(Body):
    jobs: list[JobState]


class Event(Body):
    seq: int
    kind: str
    payload: dict[str, Any]


class JobEvents(Body):
    job: JobState
    events: list[Event] = Field(description="events with seq > after, in order (at most 5000)")


class ExperimentEntry(Body):
    slug: str
    title: str
    description: str
    tags: list[str]
    featured: bool
    url: str


class Experiments(Body):
    experiments: list[ExperimentEntry]


class ShowcaseEntry(Body):
    key: str
    title: str
    family: str
    kind: str
    status: str
    url: str
    embed_url: str
    run_url: str
    note: str


class Showcase(Body):
    showcase: list[ShowcaseEntry]


class KindField(Body):
    type: str = Field(description="the form field's type (IntegerField, ChoiceField...)")
    required: bool
    initial: Any = None
    help: str
    choices: list[Any] | None = None


class KindEntry(Body):
    name: str
    label: str
    gpu_capable: bool
    params: dict[str, KindField] = Field(description="the form's fields")
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="the JSON schema of the params (None: a kind without a params model)")


class Kinds(Body):
    kinds: list[KindEntry]


class RunCheckpoint(Body):
    step: int
    source: Literal["terrain", "hf", "lora"]
    sha256: str
    num_parameters: int
    checkpoint: str | None = Field(description="catalog checkpoint slug (Terrain spec models)")


class RunState(Body):
    slug: str
    name: str
    experiment: str
    config: dict[str, Any]
    finished: bool
    url: str
    checkpoints: list[RunCheckpoint]
    metric_steps: int


class RunStart(BaseModel):
    experiment: str = Field(description="title or slug of one of your experiments (created if new)")
    name: str = ""
    config: dict[str, Any] | None = None


class MetricRow(BaseModel):
    step: int = Field(ge=0)
    metrics: dict[str, float | None]


class MetricRows(Body):
    rows: list[MetricRow]


class Stored(Body):
    stored: int


class CheckpointStored(Body):
    step: int
    source: str
    sha256: str
    checkpoint: str | None
    created: bool


class CheckpointUpload(BaseModel):
    step: int
    file: bytes = Field(json_schema_extra={"format": "binary"})


def _submission_model(kind) -> type[BaseModel]:
    """{"kind": <name>, "params": <its params model>, "visibility"?, "experiment"?} for one kind."""
    params = (kind.params, ...) if kind.params is not None else (dict[str, Any], Field(default_factory=dict))
    name = "".join(part.capitalize() for part in kind.name.replace("-", "_").split("_")) + "Submission"
    return create_model(
        name, __config__=ConfigDict(extra="forbid"),
        kind=(Literal[kind.name], ...), params=params,
        visibility=(Visibility | None, None), experiment=(str | None, Field(None, max_length=120)),
    )


def job_submission() -> Any:
    """The body of POST /api/jobs/: one variant per registered kind, told apart by `kind`."""
    variants = tuple(_submission_model(kind) for kind in kinds.all_kinds())
    if len(variants) == 1:
        return variants[0]
    return Annotated[Union[variants], Field(discriminator="kind")]  # noqa: UP007  (a runtime tuple of types)


def submission_schemas(ref_template: str) -> dict[str, Any]:
    """JobSubmission and every model it names, as OpenAPI component schemas."""
    schema = TypeAdapter(job_submission()).json_schema(ref_template=ref_template)
    components = schema.pop("$defs", {})
    components["JobSubmission"] = schema
    return components
