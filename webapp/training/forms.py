"""The job options every remaining Django job form shares (kinds declared through webapp.jobs.params have them built in)."""

from django import forms

from webapp.catalog.models import Experiment
from webapp.catalog.visibility import Visibility


class JobOptionsMixin(forms.Form):
    """Who sees the job and where its outputs land: common to every job kind's form."""

    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PRIVATE, required=False)
    experiment = forms.CharField(
        required=False, max_length=120, help_text="Slug of one of your experiments; empty: your sandbox."
    )

    def __init__(self, *args, user=None, **kwargs):
        self.user = user  # before super(): other mixins' __init__ may read it
        super().__init__(*args, **kwargs)

    def clean_visibility(self):
        return self.cleaned_data.get("visibility") or Visibility.PRIVATE

    def clean_experiment(self):
        slug = (self.cleaned_data.get("experiment") or "").strip()
        if not slug:
            return None
        experiment = Experiment.objects.filter(slug=slug).first()
        user = self.user
        allowed = experiment is not None and user is not None and user.is_authenticated and (
            user.is_staff or experiment.owner_id == user.pk
        )
        if not allowed:
            raise forms.ValidationError(f"no experiment {slug!r} that you own")
        return experiment

    def job_options(self) -> dict:
        return {"visibility": self.cleaned_data["visibility"], "experiment": self.cleaned_data["experiment"]}
