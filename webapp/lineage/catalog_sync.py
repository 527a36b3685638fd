"""Each experiment's checkpoint family tree follows its checkpoints as they change, never a page view.

The catalog graph is a derived view of ``Checkpoint.parent`` / ``merge_parents``.  It is rebuilt
when those change (any path: services, the admin, a worker), once per experiment per transaction,
after the transaction commits; pages only read it.  The catalog app knows nothing of lineage
(lineage depends on catalog, not back), so the trigger is Django's model signals, connected in
``LineageConfig.ready``.
"""

from __future__ import annotations

import logging

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

logger = logging.getLogger(__name__)

def catalog_sync_schedule(*, experiment_id: int, using: str = DEFAULT_DB_ALIAS) -> None:
    """Rebuild the experiment's catalog graph after the current transaction commits (at once without one)."""
    connection = transaction.get_connection(using)
    # Once per experiment per transaction.  Django's own queue of on-commit callbacks is the record
    # (a rolled-back transaction drops its callbacks, so a set kept beside it could go stale).
    if any(getattr(entry[1], "lineage_experiment_id", None) == experiment_id and not entry[1].ran
           for entry in connection.run_on_commit):
        return

    def sync():
        sync.ran = True
        catalog_sync_now(experiment_id=experiment_id)

    sync.lineage_experiment_id, sync.ran = experiment_id, False
    transaction.on_commit(sync, using=using, robust=True)


def catalog_sync_now(*, experiment_id: int) -> None:
    from webapp.catalog.models import Experiment
    from webapp.lineage.services import lineage_graph_sync_catalog

    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is not None:  # gone with its checkpoints: its graph went with it
        lineage_graph_sync_catalog(experiment=experiment)


def _checkpoint_saved(sender, instance, raw=False, using=DEFAULT_DB_ALIAS, **kwargs):
    if not raw:  # loaddata: the graphs come with the fixture or from catalog_sync_all
        catalog_sync_schedule(experiment_id=instance.experiment_id, using=using)


def _checkpoint_deleting(sender, instance, using=DEFAULT_DB_ALIAS, **kwargs):
    # Its children (perhaps in other experiments) lose a parent edge too.
    from webapp.catalog.models import Checkpoint

    related = set(Checkpoint.objects.filter(parent=instance).values_list("experiment_id", flat=True))
    related |= set(instance.merge_children.values_list("experiment_id", flat=True))
    for experiment_id in related:
        catalog_sync_schedule(experiment_id=experiment_id, using=using)


def _merge_parents_changed(sender, instance, action, using=DEFAULT_DB_ALIAS, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        catalog_sync_schedule(experiment_id=instance.experiment_id, using=using)


def connect() -> None:
    from webapp.catalog.models import Checkpoint

    post_save.connect(_checkpoint_saved, sender=Checkpoint, dispatch_uid="lineage-catalog-sync-save")
    post_delete.connect(_checkpoint_saved, sender=Checkpoint, dispatch_uid="lineage-catalog-sync-delete")
    pre_delete.connect(_checkpoint_deleting, sender=Checkpoint, dispatch_uid="lineage-catalog-sync-children")
    m2m_changed.connect(_merge_parents_changed, sender=Checkpoint.merge_parents.through,
                        dispatch_uid="lineage-catalog-sync-merge-parents")


def catalog_sync_all(*, log=print) -> int:
    """Every experiment with checkpoints (for databases from before the syncs followed the catalog)."""
    from webapp.catalog.models import Experiment

    ids = list(Experiment.objects.filter(checkpoints__isnull=False).distinct().values_list("pk", flat=True))
    for experiment_id in ids:
        catalog_sync_now(experiment_id=experiment_id)
    log(f"catalog family trees in step for {len(ids)} experiments")
    return len(ids)
