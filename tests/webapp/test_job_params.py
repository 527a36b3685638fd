"""webapp.jobs.params: one declaration gives the form, the validation and the field-keyed errors."""

from typing import Annotated, Literal

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from pydantic import BeforeValidator, Field

from webapp.jobs.params import Checks, JobParams, JobParamsInvalid, Upload, comma_separated, form_for, params_validate, ui

pytestmark = pytest.mark.django_db


class Example(JobParams):
    form_order = ("mode",)

    steps: int = Field(10, ge=1, le=50, title="Steps to take", description="How many.")
    rate: float | None = Field(None, ge=0.0)
    mode: Literal["fast", "slow"] = Field("slow", json_schema_extra=ui(labels={"fast": "Fast mode"}))
    widths: Annotated[list[int], BeforeValidator(comma_separated)] = Field([4, 4], max_length=3)
    tags: list[Literal["a", "b"]] = []
    on: bool = True
    note: str = Field("", max_length=5, json_schema_extra=ui(widget="textarea", rows=2))
    data_file: Upload = None

    def check(self, ctx: Checks) -> None:
        if self.mode == "fast" and self.steps > 20:
            ctx.error("steps", "fast mode takes at most 20 steps")
        ctx.params["total"] = self.steps * len(self.widths)


def test_the_form_is_derived_from_the_declaration():
    form = form_for(Example)(user=None)
    assert list(form.fields) == ["mode", "steps", "rate", "widths", "tags", "on", "note", "data_file", "visibility", "experiment"]
    steps = form.fields["steps"]
    assert isinstance(steps, forms.IntegerField) and (steps.min_value, steps.max_value, steps.initial) == (1, 50, 10)
    assert steps.label == "Steps to take" and steps.help_text == "How many."
    assert form.fields["mode"].choices == [("fast", "Fast mode"), ("slow", "slow")] and form.fields["mode"].initial == "slow"
    assert form.fields["widths"].initial == "4,4" and isinstance(form.fields["widths"], forms.CharField)
    assert isinstance(form.fields["tags"], forms.MultipleChoiceField) and form.fields["tags"].choices == [("a", "a"), ("b", "b")]
    assert isinstance(form.fields["on"], forms.BooleanField) and form.fields["on"].initial is True
    assert isinstance(form.fields["note"].widget, forms.Textarea) and form.fields["note"].max_length == 5
    assert isinstance(form.fields["data_file"], forms.FileField)
    assert form.fields["visibility"].initial == "private"
    assert form_for(Example) is form_for(Example)  # derived once


def test_errors_are_keyed_by_location_not_by_message():
    with pytest.raises(JobParamsInvalid) as caught:
        params_validate(Example, {"steps": 99, "rate": "NaN", "widths": "1,x", "mode": "quick", "bogus": 1, "note": "123456"})
    errors = caught.value.errors
    assert set(errors) == {"steps", "rate", "widths", "mode", "bogus", "note"}
    assert errors["widths"] == ["item 1: Input should be a valid integer, unable to parse string as an integer"]
    assert errors["bogus"] == ["Extra inputs are not permitted"]


def test_the_check_hook_keys_its_errors_and_writes_the_stored_params(user):
    with pytest.raises(JobParamsInvalid) as caught:
        params_validate(Example, {"mode": "fast", "steps": 30}, user=user)
    assert caught.value.errors == {"steps": ["fast mode takes at most 20 steps"]}
    params, checks = params_validate(Example, {"steps": "3", "widths": "2, 5, 7", "visibility": "public"}, user=user)
    assert params.visibility == "public" and checks.experiment is None
    assert checks.params == {"steps": 3, "rate": None, "mode": "slow", "widths": [2, 5, 7], "tags": [], "on": True, "note": "",
                             "total": 9}


def test_the_form_and_the_json_give_the_same_errors_and_values(user):
    posted = QueryDict(mutable=True)
    posted.update({"steps": "0", "widths": "4", "mode": "slow"})
    form = form_for(Example)(data=posted, user=user)
    assert not form.is_valid()
    with pytest.raises(JobParamsInvalid) as caught:
        params_validate(Example, {"steps": "0", "widths": "4"}, user=user)
    assert form.errors["steps"] == caught.value.errors["steps"]
    posted["steps"] = "5"
    posted.setlist("tags", ["a", "b"])
    form = form_for(Example)(data=posted, user=user)
    assert form.is_valid(), form.errors
    params, checks = form.validated
    # an unchecked box is absent from a post: False, as the browser means it; empty boxes take the default
    assert (params.on, params.rate, params.tags, checks.params["total"]) == (False, None, ["a", "b"], 5)


def test_upload_fields_take_files_only_from_the_form(user):
    with pytest.raises(JobParamsInvalid) as caught:
        params_validate(Example, {"data_file": "/etc/passwd"}, user=user)
    assert list(caught.value.errors) == ["data_file"]
    uploaded = SimpleUploadedFile("x.npz", b"data")
    params, checks = params_validate(Example, {}, user=user, files={"data_file": uploaded})
    assert params.data_file is uploaded and "data_file" not in checks.params
    assert "data_file" not in Example.model_json_schema()["properties"]


def test_someone_elses_experiment_is_refused_on_its_field(user, other_user):
    from webapp.catalog.services import experiment_create

    theirs = experiment_create(title="theirs", owner=other_user)
    mine = experiment_create(title="mine", owner=user)
    with pytest.raises(JobParamsInvalid) as caught:
        params_validate(Example, {"experiment": theirs.slug}, user=user)
    assert list(caught.value.errors) == ["experiment"]
    assert params_validate(Example, {"experiment": mine.slug}, user=user)[1].experiment == mine
