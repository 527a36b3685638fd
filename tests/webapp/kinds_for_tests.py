"""Job kinds that exist only in the test process, to drive the runner without torch."""

from django import forms

from webapp.jobs.kinds import JobKind, register
from webapp.training.forms import JobOptionsMixin


class StepsForm(JobOptionsMixin):
    steps = forms.IntegerField(min_value=1, max_value=50)
    fail_at = forms.IntegerField(required=False)

    def to_params(self):
        return {"steps": self.cleaned_data["steps"], "fail_at": self.cleaned_data["fail_at"]}


def run_steps(ctx):
    for step in range(1, ctx.params["steps"] + 1):
        if ctx.params.get("fail_at") == step:
            raise ValueError(f"boom at step {step}")
        ctx.emit("tick", {"step": step}, progress=step / ctx.params["steps"])
    return {"steps": ctx.params["steps"]}


STEPS = register(JobKind(name="test-steps", label="Test steps", form_class=StepsForm, run=run_steps))
