"""The registry of job kinds.

A job kind is what a Celery worker knows how to run: its parameters (a pydantic model,
webapp.jobs.params, from which its form, API schema and CLI options are derived), a
function that does the work given a JobContext, the events it emits (one pydantic
model per event kind, in the app's event_types.py), and whether it can use a GPU.
Apps declare theirs in a `job_kinds.py` module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from django import forms
from django.utils.module_loading import autodiscover_modules

if TYPE_CHECKING:
    from webapp.jobs.context import JobContext


class UnknownJobKind(LookupError):
    pass


class _Deferred:
    """Returned by a kind whose work continues elsewhere (e.g. a sweep fanned out over
    many tasks): the job stays running until a service finishes it with job_finish."""

    def __repr__(self):
        return "DEFERRED"


DEFERRED = _Deferred()


@dataclass(frozen=True, kw_only=True)
class JobKind:
    name: str
    label: str
    run: Callable[["JobContext"], dict]
    # The parameters model (webapp.jobs.params.JobParams); the form is derived from it.
    params: Any = None
    # Only for a kind not yet declared through `params`: its own Django form.
    form_class: type[forms.Form] | None = None
    gpu_capable: bool = False
    template: str = "jobs/result_generic.html"
    # The static script(s) defining the kind's live figure (TerrainRenderers[name]); the result page,
    # its embed and its standalone export load exactly these between the live client and the page script.
    renderers: tuple[str, ...] = ("js/generic_renderer.js",)
    # result dict -> CSV text of its numbers, for the export link (None: no CSV).
    to_csv: Callable[[dict], str] | None = None
    # How the kind's parts run when its run() fans out (webapp.jobs.fanout.FanOut; None: it never does).
    fanout: Any = None
    # Event kind -> its payload model (webapp.jobs.event_types.EventPayload); an undeclared event is refused.
    events: dict[str, type] = field(default_factory=dict)
    # The one shape of a successful result (a pydantic model or annotated union; None: not declared).
    result: Any = None

    def __post_init__(self):
        if self.params is not None:
            from webapp.jobs.params import form_for

            object.__setattr__(self, "form_class", form_for(self.params))
        if self.form_class is None:
            raise ValueError(f"job kind {self.name!r} declares no params model")

    def title_for(self, params: dict) -> str:
        return self.label

    def page_scripts(self) -> list[str]:
        """The scripts of this kind's result page, in order: live client, the kind's renderers, the page script."""
        return ["js/live.js", *self.renderers, "js/result_page.js"]

    def result_errors(self, result: dict) -> str:
        """Why `result` does not fit this kind's declared result shape ("" when it does)."""
        if self.result is None:
            return ""
        from pydantic import TypeAdapter, ValidationError

        try:
            TypeAdapter(self.result).validate_python(result)
        except ValidationError as exc:
            return f"the {self.name} result is ill-shaped: {exc}"
        return ""


_REGISTRY: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    if kind.name in _REGISTRY and _REGISTRY[kind.name] is not kind:
        raise ValueError(f"job kind {kind.name!r} registered twice")
    _REGISTRY[kind.name] = kind
    return kind


def get(name: str) -> JobKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownJobKind(f"unknown job kind {name!r}; known kinds: {', '.join(sorted(_REGISTRY))}") from None


def all_kinds() -> list[JobKind]:
    return sorted(_REGISTRY.values(), key=lambda kind: kind.name)


def autodiscover() -> None:
    autodiscover_modules("job_kinds")
