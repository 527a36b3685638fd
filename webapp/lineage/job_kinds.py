from webapp.jobs.kinds import JobKind, register
from webapp.lineage.event_types import IMPORT_EVENTS, KINSHIP_EVENTS, RECOVERY_EVENTS
from webapp.lineage.import_job import lineage_import_run
from webapp.lineage.kinship import kinship_csv, kinship_run
from webapp.lineage.params import KinshipParams, LineageImportParams, RecoveryParams
from webapp.lineage.recovery import recovery_csv, recovery_run


class RecoveryKind(JobKind):
    def title_for(self, params: dict) -> str:
        if params.get("source") == "experiment":
            return f"Lineage recovered from the weights of {len(params.get('checkpoints', []))} checkpoints"
        if params.get("recipe"):
            return f"Lineage recovered from weights: a zoo by the recipe {params['recipe']!r} (seed {params.get('seed')})"
        n = params.get("n_families", 0) * (1 + params.get("children_per_root", 0) * (1 + params.get("grandchildren_per_child", 0)))
        return f"Lineage recovered from weights: synthetic zoo of {n} models (seed {params.get('seed')})"


class ImportKind(JobKind):
    def title_for(self, params: dict) -> str:
        parts = [f"{len(params.get('files', []))} file(s)"] if params.get("files") else []
        parts += [f"{len(params.get('hub_ids', []))} Hub id(s)"] if params.get("hub_ids") else []
        return f"Lineage import {params.get('name', '')!r}: {' and '.join(parts)}"


class KinshipKind(JobKind):
    def title_for(self, params: dict) -> str:
        return f"Kinship of {params.get('a')} and {params.get('b')} (base {params.get('base')})"


LINEAGE_RECOVERY = register(
    RecoveryKind(
        name="lineage_recovery", label="Recover lineage from weights", params=RecoveryParams, run=recovery_run,
        template="lineage/result_recovery.html", to_csv=recovery_csv, events=RECOVERY_EVENTS,
        renderers=("js/lineage_renderers.js",),
    )
)
LINEAGE_IMPORT = register(
    ImportKind(
        name="lineage_import", label="Import a lineage graph", params=LineageImportParams, run=lineage_import_run,
        template="lineage/result_import.html", events=IMPORT_EVENTS,
        renderers=("js/lineage_job_renderers.js",),
    )
)
KINSHIP = register(
    KinshipKind(
        name="kinship", label="Kinship of two checkpoints", params=KinshipParams, run=kinship_run,
        template="lineage/result_kinship.html", to_csv=kinship_csv, events=KINSHIP_EVENTS,
        renderers=("js/lineage_job_renderers.js",),
    )
)
