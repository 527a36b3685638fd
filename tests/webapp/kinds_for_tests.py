"""Job kinds that exist only in the test process, to drive the runner without torch."""

from django import forms

from webapp.jobs.event_types import EventPayload
from webapp.jobs.kinds import JobKind, register
from webapp.training.forms import JobOptionsMixin


class StepsForm(JobOptionsMixin):
    steps = forms.IntegerField(min_value=1, max_value=50)
    fail_at = forms.IntegerField(required=False)

    def to_params(self):
        return {"steps": self.cleaned_data["steps"], "fail_at": self.cleaned_data["fail_at"]}


class Tick(EventPayload):
    step: int


class Square(EventPayload):
    x: int


def run_steps(ctx):
    for step in range(1, ctx.params["steps"] + 1):
        if ctx.params.get("fail_at") == step:
            raise ValueError(f"boom at step {step}")
        ctx.emit("tick", {"step": step}, progress=step / ctx.params["steps"])
    return {"steps": ctx.params["steps"]}


STEPS = register(JobKind(name="test-steps", label="Test steps", form_class=StepsForm, run=run_steps, events={"tick": Tick}))


def run_squares(ctx):
    """A fanned-out kind: part 0 (stage 0) first, then parts 1..n (stage 1), each squaring its index."""
    from webapp.jobs.fanout import Part, fanout_start

    n = ctx.params["steps"]
    return fanout_start(ctx, [Part(index=0, payload={"x": 0}), *(Part(index=k, payload={"x": k}, stage=1) for k in range(1, n + 1))])


FINALISED = []  # (job slug, indices seen) per finaliser call, for the tests


def square_part(ctx):
    if ctx.params.get("fail_at") == ctx.payload["x"]:
        raise ValueError(f"boom at part {ctx.payload['x']}")
    ctx.emit("square", {"x": ctx.payload["x"]}, progress=0.5)
    ctx.raise_if_cancelled(force=True)
    return {"square": ctx.payload["x"] ** 2}


def add_squares(ctx, parts):
    FINALISED.append((ctx.job.slug, [p.index for p in parts]))
    if ctx.job.cancel_requested:
        return None
    return {"sum": sum(p.result["square"] for p in parts)}


def _fanout():
    from webapp.jobs.fanout import FanOut

    return FanOut(run_part=square_part, finish=add_squares)


SQUARES = register(JobKind(name="test-squares", label="Test squares", form_class=StepsForm, run=run_squares, fanout=_fanout(),
                          events={"square": Square}))
