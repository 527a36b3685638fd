from webapp.jobs.kinds import JobKind, register
from webapp.merging.event_types import GREEDY_EVENTS, MERGE_EVENTS
from webapp.merging.exports import merge_csv
from webapp.merging.greedy import greedy_run
from webapp.merging.params import GreedyMergeParams, MergeParams
from webapp.merging.services import merge_run


class MergeKind(JobKind):
    def title_for(self, params: dict) -> str:
        from analysis.merging import METHODS

        method = METHODS.get(params.get("method"))
        label = method.label if method else params.get("method")
        base = " onto their base" if params.get("base") else ""
        return f"Merge of {len(params.get('models', []))} models{base}: {label}"


MERGE = register(
    MergeKind(name="merge", label="Merge models", params=MergeParams, run=merge_run,
              template="merging/result_merge.html", to_csv=merge_csv, events=MERGE_EVENTS,
              renderers=("js/merge_renderers.js",))
)


class GreedyMergeKind(JobKind):
    def title_for(self, params: dict) -> str:
        return f"Kinship-guided greedy merging of {len(params.get('models', []))} relatives vs random partners"


MERGE_GREEDY = register(
    GreedyMergeKind(name="merge_greedy", label="Greedy merging by kinship", params=GreedyMergeParams, run=greedy_run,
                    template="merging/result_greedy.html", events=GREEDY_EVENTS,
                    renderers=("js/merge_renderers.js",))
)
