from webapp.jobs.kinds import JobKind, register
from webapp.lineage.event_types import RECOVERY_EVENTS
from webapp.lineage.forms import RecoveryForm
from webapp.lineage.recovery import recovery_csv, recovery_run


class RecoveryKind(JobKind):
    def title_for(self, params: dict) -> str:
        if params.get("source") == "experiment":
            return f"Lineage recovered from the weights of {len(params.get('checkpoints', []))} checkpoints"
        if params.get("recipe"):
            return f"Lineage recovered from weights: a zoo by the recipe {params['recipe']!r} (seed {params.get('seed')})"
        n = params.get("n_families", 0) * (1 + params.get("children_per_root", 0) * (1 + params.get("grandchildren_per_child", 0)))
        return f"Lineage recovered from weights: synthetic zoo of {n} models (seed {params.get('seed')})"


LINEAGE_RECOVERY = register(
    RecoveryKind(
        name="lineage_recovery", label="Recover lineage from weights", form_class=RecoveryForm, run=recovery_run,
        template="lineage/result_recovery.html", to_csv=recovery_csv, events=RECOVERY_EVENTS,
    )
)
