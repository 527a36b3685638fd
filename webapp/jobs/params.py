"""Job parameters declared once, as a pydantic model: the HTML form, the JSON API, the OpenAPI
schema and the client CLI's options are all derived from it.

Interface (what a job kind declares, in its app's `params.py` or `job_kinds.py`)::

    from typing import Literal
    from pydantic import Field
    from webapp.jobs.params import Checks, JobParams, Upload, Uploads, comma_separated, ui

    class TrainParams(JobParams):
        dataset: Literal["digits", "moons"] = Field("digits", json_schema_extra=ui(labels={"digits": "digits (8x8)"}))
        hidden: Annotated[list[int], BeforeValidator(comma_separated)] = Field([64, 64], min_length=1, max_length=4)
        lr: float = Field(0.05, title="Learning rate", description="help text", ge=1e-6, le=10.0)
        name: str = Field("", max_length=120)
        notes: str = Field("", json_schema_extra=ui(widget="textarea", rows=3))
        checkpoint_file: Upload = Field(None, description="a file: form only, never in the JSON API")

        def check(self, ctx: Checks) -> None:          # optional: checks that need the database or the user
            if not visible(self.checkpoint, ctx.user):
                ctx.error("checkpoint", "no checkpoint ... that you can see")   # keyed by field; None: the whole form
            ctx.params["checkpoint"] = slug             # ctx.params is what job.params stores (edit it freely)
            ctx.pending_uploads.append(pending)          # validated uploads, stored by job_submit with the job

        @classmethod
        def form_setup(cls, form) -> None:             # optional: per-request choices/help text of the HTML form
            form.fields["models"].choices = [...]       # form.user is the user; form.data the posted data

    KIND = register(JobKind(name="train", label="...", params=TrainParams, run=training_run))

- `JobParams` (pydantic.BaseModel): extra="forbid", NaN/inf refused, strings stripped. Every kind has
  `visibility` (Literal private/unlisted/public, default private) and `experiment` (slug, "" = none):
  who sees the job and where it is filed; they are not stored in job.params (`OPTIONS`).
- Field types the form understands: bool, int, float, str, Literal[...] (a select), list[str] /
  list[Literal] (checkboxes; choices from the Literal or set in form_setup), list[int] / list[float]
  (a comma-separated text box: give the field `BeforeValidator(comma_separated)`), `X | None`
  (optional), `Upload` / `Uploads` (file fields; the JSON API cannot send files). Anything else is a
  text box whose text the model must parse (a BeforeValidator).
- Form hints go in `json_schema_extra=ui(labels=..., widget="textarea"|"radio"|"select", rows=, placeholder=)`
  ("select" on a str field: a drop-down whose choices form_setup fills in per request).
  `title` is the form label, `description` its help text, `ge`/`le` and `max_length` its limits,
  the default its initial value. Class variable `form_order` (field names) orders the form; the
  options come last unless named there.
- `Checks` (the hook's context): `user`, `files`, `params` (dict stored as job.params, starts as the
  validated values minus the options), `experiment` (resolved Experiment or None), `pending_uploads`,
  `errors`; `ctx.error(field, message)`.
- `params_validate(model, data, *, user=None, files=None) -> (JobParams, Checks)`: the one validation:
  pydantic, then the experiment option, then `model.check(ctx)`; raises `JobParamsInvalid(errors)` with
  errors {field: [messages]} keyed by the pydantic `loc` (the first part; "__all__" for the whole).
- `form_for(kind_or_model)`: the Django form class (cached per model), constructed as
  `Form(data=None, files=None, initial=None, user=None)`; `is_valid()` runs params_validate on the
  raw posted values and puts each error under its field; then `form.validated` is (params, checks).
- `field_errors(exc: pydantic.ValidationError) -> dict[str, list[str]]`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union

import pydantic
from django import forms
from pydantic import ConfigDict, Field, PlainValidator
from pydantic.json_schema import SkipJsonSchema

from webapp.catalog.visibility import Visibility

NON_FIELD = "__all__"  # Django's key for errors of the whole form
OPTIONS = ("visibility", "experiment")


class JobParamsInvalid(ValueError):
    """The parameters failed validation; `errors` maps field name -> list of messages."""

    def __init__(self, errors: dict[str, list[str]], form=None):
        self.errors = errors
        self.form = form  # the bound form, to show the errors next to their fields
        super().__init__(f"invalid job parameters: {', '.join(sorted(errors))}")


def ui(*, labels: dict | list | None = None, widget: str | None = None, rows: int | None = None,
       placeholder: str | None = None) -> dict:
    """Form hints, kept in the field's JSON schema (x- keys: ignored by validators)."""
    hints = {"x-labels": dict(labels) if labels is not None else None, "x-widget": widget, "x-rows": rows,
             "x-placeholder": placeholder}
    return {key: value for key, value in hints.items() if value is not None}


def comma_separated(value):
    """"64, 64" -> ["64", "64"] (the list's item type converts them); lists pass through."""
    if isinstance(value, str):
        return [part for part in value.replace(" ", "").split(",") if part]
    return value


@dataclass(frozen=True)
class _UploadMarker:
    multiple: bool


def _is_upload(value):
    from django.core.files.uploadedfile import UploadedFile

    items = value if isinstance(value, list) else [value]
    if value is None or all(isinstance(item, UploadedFile) for item in items):
        return value
    raise ValueError("a file field: upload it through the form (multipart), not as a value")


Upload = SkipJsonSchema[Annotated[Any, PlainValidator(_is_upload), _UploadMarker(multiple=False)]]
Uploads = SkipJsonSchema[Annotated[Any, PlainValidator(_is_upload), _UploadMarker(multiple=True)]]


@dataclass
class Checks:
    """What a kind's check() hook sees and writes."""

    user: Any
    files: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    experiment: Any = None
    pending_uploads: list = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, name: str | None, message: str) -> None:
        self.errors.setdefault(name or NON_FIELD, []).append(str(message))


class JobParams(pydantic.BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)
    form_order: ClassVar[tuple[str, ...]] = ()

    visibility: Literal["private", "unlisted", "public"] = Field(
        Visibility.PRIVATE.value, description="Who sees the job.", json_schema_extra=ui(labels=dict(Visibility.choices)))
    experiment: str = Field("", max_length=120, description="Slug of one of your experiments; empty: your sandbox.")

    def check(self, ctx: Checks) -> None:
        """Checks that need the database or the user; report with ctx.error(field, message)."""

    @classmethod
    def form_setup(cls, form) -> None:
        """Per-request changes to the HTML form (choices that depend on the user, help text)."""


def field_errors(exc: pydantic.ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        name = str(loc[0]) if loc else NON_FIELD
        message = error["msg"].removeprefix("Value error, ")
        if len(loc) > 1:
            message = f"item {'.'.join(str(part) for part in loc[1:])}: {message}"
        errors.setdefault(name, []).append(message)
    return errors


def _check_experiment(params: JobParams, ctx: Checks) -> None:
    from webapp.catalog.models import Experiment

    slug = params.experiment
    if not slug:
        return
    experiment = Experiment.objects.filter(slug=slug).first()
    user = ctx.user
    allowed = experiment is not None and user is not None and user.is_authenticated and (
        user.is_staff or experiment.owner_id == user.pk)
    if not allowed:
        ctx.error("experiment", f"no experiment {slug!r} that you own")
    ctx.experiment = experiment if allowed else None


def params_validate(model: type[JobParams], data, *, user=None, files=None) -> tuple[JobParams, Checks]:
    """Validate raw parameters (a dict from JSON or the form's raw values) through the model, then its check()."""
    given = dict(data or {})
    for name in _upload_fields(model):
        if name in given:
            raise JobParamsInvalid({name: ["a file field: upload it through the form (multipart), not as a value"]})
    for name, uploaded in (files or {}).items():
        if name in _upload_fields(model):
            given[name] = uploaded
    try:
        params = model.model_validate(given)
    except pydantic.ValidationError as exc:
        raise JobParamsInvalid(field_errors(exc)) from None
    ctx = Checks(user=user, files=files or {}, params=params.model_dump(mode="json", exclude={*OPTIONS, *_upload_fields(model)}))
    _check_experiment(params, ctx)
    if not ctx.errors:
        params.check(ctx)
    if ctx.errors:
        for upload in ctx.pending_uploads:
            upload.close()
        raise JobParamsInvalid(ctx.errors)
    return params, ctx


# --- the HTML form ------------------------------------------------------------------------------


def _upload_fields(model: type[JobParams]) -> dict[str, _UploadMarker]:
    return {name: marker for name, info in model.model_fields.items()
            for marker in _markers(info) if isinstance(marker, _UploadMarker)}


def _markers(info) -> list:
    found = list(info.metadata)
    annotation = info.annotation
    while typing.get_origin(annotation) is Annotated:
        found += list(annotation.__metadata__)
        annotation = annotation.__origin__
    return found


def _unwrap(annotation) -> tuple[Any, bool]:
    """(the type without Annotated / Optional, whether None is allowed)."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = annotation.__origin__
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                return annotation, optional
            annotation = args[0]
        else:
            return annotation, optional


def _limits(info) -> dict:
    limits = {}
    for item in info.metadata:
        for attr, key in (("ge", "min_value"), ("le", "max_value"), ("max_length", "max_length")):
            if getattr(item, attr, None) is not None:
                limits[key] = getattr(item, attr)
    return limits


def _choices(values, labels: dict) -> list[tuple]:
    return [(value, labels.get(value, value if value != "" else "(none)")) for value in values]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (a model folder's files, a set of edge lists)."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


def _form_field(name: str, info) -> forms.Field:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    labels, widget = extra.get("x-labels") or {}, extra.get("x-widget")
    common = {"required": False, "label": info.title, "help_text": info.description or ""}
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    kind, _ = _unwrap(info.annotation)
    limits = _limits(info)
    upload = _upload_fields_of_info(info)
    if upload is not None:
        return (MultipleFileField if upload.multiple else forms.FileField)(**common)
    if kind is bool:
        return forms.BooleanField(initial=bool(default), **common)
    if kind is int:
        return forms.IntegerField(initial=default, **{k: v for k, v in limits.items() if k != "max_length"}, **common)
    if kind is float:
        return forms.FloatField(initial=default, **{k: v for k, v in limits.items() if k != "max_length"}, **common)
    if typing.get_origin(kind) is Literal:
        choice = forms.RadioSelect if widget == "radio" else forms.Select
        return forms.ChoiceField(choices=_choices(typing.get_args(kind), labels), initial=default, widget=choice, **common)
    if typing.get_origin(kind) is list:
        item, _ = _unwrap(typing.get_args(kind)[0]) if typing.get_args(kind) else (str, False)
        if item in (int, float):  # a comma-separated text box
            initial = ",".join(str(v) for v in default) if default else None
            return forms.CharField(initial=initial, **common)
        values = typing.get_args(item) if typing.get_origin(item) is Literal else ()
        return forms.MultipleChoiceField(choices=_choices(values, labels), initial=default,
                                         widget=forms.CheckboxSelectMultiple, **common)
    if widget == "select":  # a choice among values known per request (form_setup sets the choices)
        return forms.ChoiceField(choices=[], initial=default, **common)
    text_widget = forms.Textarea(attrs={k: v for k, v in (("rows", extra.get("x-rows") or 3),
                                                          ("placeholder", extra.get("x-placeholder"))) if v}) \
        if widget == "textarea" else forms.TextInput(attrs={"placeholder": extra["x-placeholder"]} if extra.get("x-placeholder") else {})
    return forms.CharField(initial=default if isinstance(default, str) and default != "" else None,
                           max_length=limits.get("max_length"), widget=text_widget, strip=False, **common)


def _upload_fields_of_info(info) -> _UploadMarker | None:
    return next((m for m in _markers(info) if isinstance(m, _UploadMarker)), None)


class ParamsForm(forms.Form):
    """A form derived from a JobParams model; the model alone validates (see form_for)."""

    params_model: ClassVar[type[JobParams]]

    def __init__(self, data=None, files=None, *, user=None, **kwargs):
        self.user = user
        super().__init__(data, files, **kwargs)
        self.validated: tuple[JobParams, Checks] | None = None
        self.pending_uploads: list = []
        self.params_model.form_setup(self)

    def _raw(self) -> tuple[dict, dict]:
        """The posted values as the model reads them: empty boxes are absent (the default applies)."""
        values, files = {}, {}
        for name, bound in ((name, self[name]) for name in self.fields):
            field_ = self.fields[name]
            if isinstance(field_, forms.FileField):
                try:
                    uploaded = field_.clean(bound.data, None)
                except forms.ValidationError as exc:
                    self.add_error(name, exc)
                    continue
                if uploaded not in (None, []):
                    files[name] = uploaded
                continue
            raw = bound.data
            if raw is None or raw == "":
                continue
            values[name] = raw
        return values, files

    def clean(self):
        values, files = self._raw()
        if self.errors:
            return {}
        try:
            self.validated = params_validate(self.params_model, values, user=self.user, files=files)
        except JobParamsInvalid as invalid:
            for name, messages in invalid.errors.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None,
                                   message if name in self.fields or name == NON_FIELD else f"{name}: {message}")
            return {}
        self.pending_uploads = self.validated[1].pending_uploads
        return self.validated[0].model_dump(exclude=set(_upload_fields(self.params_model)))

    def _clean_fields(self):
        pass  # the model validates every field (clean()); Django's field cleaning would be a second set of rules


def _ordered(model: type[JobParams]) -> list[str]:
    names = [name for name in model.model_fields if name not in OPTIONS]
    first = [name for name in model.form_order if name in model.model_fields]
    rest = [name for name in names if name not in first]
    return first + rest + [name for name in OPTIONS if name not in first]


@cache
def _form_of_model(model: type[JobParams]) -> type[ParamsForm]:
    fields = {name: _form_field(name, model.model_fields[name]) for name in _ordered(model)}
    return type(f"{model.__name__}Form", (ParamsForm,), {"params_model": model, **fields})


def form_for(kind_or_model) -> type[forms.Form]:
    """The Django form of a kind (or of a params model)."""
    model = getattr(kind_or_model, "params", kind_or_model)
    if model is None:  # a kind that still declares its own form
        return kind_or_model.form_class
    return _form_of_model(model)
