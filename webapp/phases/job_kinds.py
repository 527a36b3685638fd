from webapp.jobs.kinds import JobKind, register
from webapp.phases.event_types import SWEEP_EVENTS
from webapp.phases.exports import sweep_csv
from webapp.phases.params import SweepJobParams
from webapp.phases.results import SweepResult
from webapp.phases.services import SWEEP_FANOUT, sweep_start


class SweepKind(JobKind):
    def title_for(self, params: dict) -> str:
        spec = params.get("spec", {})
        name = spec.get("name") or ""
        x, y = spec.get("x", {}).get("name", "x"), spec.get("y", {}).get("name", "y")
        shape = f"{len(spec.get('x', {}).get('values', []))}x{len(spec.get('y', {}).get('values', []))}"
        return name or f"Phase diagram: {x} x {y} ({shape}, {spec.get('task', {}).get('name', '')})"


SWEEP = register(
    SweepKind(name="sweep", label="Phase diagram sweep", params=SweepJobParams, run=sweep_start, gpu_capable=True,
              template="phases/result_sweep.html", to_csv=sweep_csv, fanout=SWEEP_FANOUT, events=SWEEP_EVENTS, result=SweepResult,
              renderers=("js/phase_renderers.js",))
)
