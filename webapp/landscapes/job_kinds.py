from webapp.jobs.kinds import JobKind, register
from webapp.landscapes import exports
from webapp.landscapes.event_types import CONNECTIVITY_EVENTS, HESSIAN_EVENTS, LANDSCAPE_EVENTS
from webapp.landscapes.params import ConnectivityParams, HessianParams, LandscapeParams
from webapp.landscapes.results import ConnectivityResult, HessianResult, LandscapeResult
from webapp.landscapes.hessian_fanout import HESSIAN_FANOUT, hessian_run_or_fan_out
from webapp.landscapes.landscape_fanout import LANDSCAPE_FANOUT, landscape_run_or_fan_out
from webapp.landscapes.services import connectivity_run


class LandscapeKind(JobKind):
    def title_for(self, params: dict) -> str:
        if params.get("mode") == "line":
            return f"Loss line ({'to another checkpoint' if params.get('end_checkpoint') else 'random direction'}), {params.get('resolution')} points"
        n = params.get("resolution")
        if params.get("axes") == "three_models":
            return f"Loss plane through three models, {n}x{n}" + (f", tasks {params['tasks']}" if params.get("tasks") else "")
        return f"Loss plane, {params.get('axes')} axes, {n}x{n}"


LANDSCAPE = register(
    LandscapeKind(
        name="landscape", label="Loss landscape", params=LandscapeParams, run=landscape_run_or_fan_out, gpu_capable=True,
        template="landscapes/result_landscape.html", to_csv=exports.landscape_csv, fanout=LANDSCAPE_FANOUT,
        events=LANDSCAPE_EVENTS, result=LandscapeResult, renderers=("js/landscape_renderers.js",),
    )
)
HESSIAN = register(
    JobKind(
        name="hessian", label="Hessian spectrum", params=HessianParams, run=hessian_run_or_fan_out, gpu_capable=True, fanout=HESSIAN_FANOUT,
        template="landscapes/result_hessian.html", to_csv=exports.hessian_csv, events=HESSIAN_EVENTS, result=HessianResult,
        renderers=("js/landscape_renderers.js",),
    )
)
CONNECTIVITY = register(
    JobKind(
        name="connectivity", label="Mode connectivity", params=ConnectivityParams, run=connectivity_run, gpu_capable=True,
        template="landscapes/result_connectivity.html", to_csv=exports.connectivity_csv, events=CONNECTIVITY_EVENTS, result=ConnectivityResult,
        renderers=("js/landscape_renderers.js",),
    )
)
