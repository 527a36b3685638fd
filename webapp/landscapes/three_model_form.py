"""Landscape form fields of the plane through three models: its two other corners, markers and tasks."""

from __future__ import annotations

from django import forms

MAX_MARKERS = 8


class ThreeModelPlaneMixin(forms.Form):
    checkpoint_b = forms.CharField(required=False, max_length=32, label="Three-model plane: B",
                                   help_text="Slug of the plane's second corner, at (1, 0); the checkpoint is the origin.")
    checkpoint_c = forms.CharField(required=False, max_length=32, label="Three-model plane: C",
                                   help_text="Slug of the third corner, at (0, 1).")
    markers = forms.CharField(required=False, max_length=400, label="Three-model plane: markers",
                              help_text=f"Slugs of other models to place on the plane (merges), comma-separated; at most {MAX_MARKERS}.")
    tasks = forms.CharField(required=False, max_length=200, label="Three-model plane: tasks",
                            help_text='One surface per digits task, e.g. "0,1,2,3,4; 5,6,7,8,9"; empty: the data set above.')

    def clean_tasks(self):
        from webapp.landscapes.evaluation_sets import EvaluationSetError, parse_class_lists

        try:
            return parse_class_lists(self.cleaned_data.get("tasks", ""))
        except EvaluationSetError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_three_models(self, cleaned) -> None:
        from analysis import data, zoo

        origin = self.checkpoints["checkpoint"]
        for field in ("checkpoint_b", "checkpoint_c"):
            other = self.checkpoints.get(field)
            if other is None:
                self.add_error(field, "the plane through three models needs this corner")
            elif other.spec != origin.spec:
                self.add_error(field, "must have the same architecture as the checkpoint")
        slugs = [s.strip() for s in (cleaned.get("markers") or "").split(",") if s.strip()]
        if len(slugs) > MAX_MARKERS:
            self.add_error("markers", f"at most {MAX_MARKERS} markers")
            return
        self.marker_checkpoints = []
        for slug in slugs:
            marker = self._visible_checkpoint(slug, "markers")
            if marker is not None and marker.spec != origin.spec:
                self.add_error("markers", f"{marker.name!r} has a different architecture from the checkpoint")
            self.marker_checkpoints.append(marker)
        if cleaned.get("tasks"):
            try:
                zoo.check_compatible(origin.spec, data.describe("digits"))
            except zoo.SpecError as exc:
                self.add_error("tasks", f"digits tasks do not fit the checkpoint: {exc}")

    def three_model_params(self) -> dict:
        if self.cleaned_data.get("axes") != "three_models" or self.cleaned_data.get("mode") != "plane":
            return {}
        from webapp.landscapes.evaluation_sets import format_class_lists

        return {"checkpoint_b": self.checkpoints["checkpoint_b"].slug, "checkpoint_c": self.checkpoints["checkpoint_c"].slug,
                "markers": [m.slug for m in self.marker_checkpoints], "tasks": format_class_lists(self.cleaned_data["tasks"])}
