import pytest
from django.contrib.auth.models import AnonymousUser

from webapp.catalog import selectors as catalog_selectors
from webapp.catalog.services import experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs import selectors
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "visibility, viewer, visible",
    [
        (Visibility.PUBLIC, "anonymous", True),
        (Visibility.UNLISTED, "anonymous", True),
        (Visibility.PRIVATE, "anonymous", False),
        (Visibility.PRIVATE, "other", False),
        (Visibility.PRIVATE, "owner", True),
        (Visibility.PRIVATE, "staff", True),
    ],
)
def test_job_visibility(user, other_user, staff_user, visibility, viewer, visible):
    job = Job.objects.create(kind="train", owner=user, visibility=visibility)
    viewers = {"anonymous": AnonymousUser(), "other": other_user, "owner": user, "staff": staff_user}
    assert (selectors.job_get_visible(slug=job.slug, user=viewers[viewer]) is not None) is visible


def test_unknown_slug_is_none(user):
    assert selectors.job_get_visible(slug="nope", user=user) is None


def test_public_catalog_order_search_and_tags(user):
    plain = experiment_create(title="Plain landscapes", owner=user, visibility=Visibility.PUBLIC, tags=["mlp"])
    featured = experiment_create(title="Featured grokking", owner=user, visibility=Visibility.PUBLIC, featured=True, tags=["grokking"])
    experiment_create(title="Hidden landscapes", owner=user, visibility=Visibility.PRIVATE, tags=["mlp"])
    experiment_create(title="Unlisted landscapes", owner=user, visibility=Visibility.UNLISTED)
    assert list(catalog_selectors.experiments_public()) == [featured, plain]
    assert list(catalog_selectors.experiments_public(query="landscapes")) == [plain]
    assert list(catalog_selectors.experiments_public(tag="mlp")) == [plain]
    assert list(catalog_selectors.experiments_public(query="grokking")) == [featured]
    assert [t.slug for t in catalog_selectors.tags_in_public_catalog()] == ["grokking", "mlp"]


def test_curated_order_breaks_ties(user):
    late = experiment_create(title="B", owner=user, visibility=Visibility.PUBLIC)
    early = experiment_create(title="A", owner=user, visibility=Visibility.PUBLIC)
    late.curated_order, early.curated_order = 5, 50
    late.save(), early.save()
    assert list(catalog_selectors.experiments_public()) == [late, early]


def test_snapshot_has_events_after(user):
    from tests.webapp import kinds_for_tests  # noqa: F401  (registers test-steps)
    from webapp.jobs.events import job_event_append

    job = Job.objects.create(kind="test-steps", owner=user)
    for i in range(5):
        job_event_append(job=job, kind="tick", payload={"step": i})
    snapshot = selectors.job_snapshot(job_id=job.pk, after=3)
    assert [e["seq"] for e in snapshot["events"]] == [4, 5]
    assert snapshot["job"]["last_seq"] == 5


def test_staff_see_checkpoints_made_by_jobs_and_strangers_do_not(user, other_user, staff_user, tmp_path):
    # Regression: staff's "everything" must not collapse to "only checkpoints no job made" (Q(a) | Q() is Q(a)).
    from tests.webapp.landscape_fixtures import trained_checkpoint
    from webapp.catalog.selectors import checkpoint_get_visible
    from webapp.catalog.visibility import Visibility
    from webapp.jobs.models import Job

    checkpoint = trained_checkpoint(user, tmp_path, visibility=Visibility.PRIVATE, with_trajectory=False)
    checkpoint.created_by_job = Job.objects.create(kind="train", owner=user, visibility=Visibility.PRIVATE)
    checkpoint.save()
    assert checkpoint_get_visible(slug=checkpoint.slug, user=staff_user) == checkpoint
    assert checkpoint_get_visible(slug=checkpoint.slug, user=user) == checkpoint
    assert checkpoint_get_visible(slug=checkpoint.slug, user=other_user) is None
