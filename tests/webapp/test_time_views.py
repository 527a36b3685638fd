"""``manage.py time_views`` works (on a tiny site; its numbers are judged on demand, not here)."""

import io

import pytest
from django.core.management import call_command

from tests.webapp.small_site import small_site
from webapp.jobs.models import Job
from webapp.lineage.models import LineageGraph, LineageUpload

pytestmark = pytest.mark.django_db


def test_time_views_prints_every_route_and_leaves_nothing_behind(user, staff_user, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    small_site(owner=user, tmp_path=tmp_path)
    before = (Job.objects.count(), LineageGraph.objects.count())
    out = io.StringIO()
    with pytest.raises(SystemExit) as over:  # a threshold of 0 ms: every URL is over it
        call_command("time_views", "--no-seed", "--repeat", "1", "--per-route", "1", "--threshold-ms", "0", "--show", "0",
                     stdout=out, stderr=io.StringIO())
    assert over.value.code == 1
    text = out.getvalue()
    assert text.splitlines()[0].split()[:3] == ["median", "ms", "first"]
    for route in ("lineage:graph", "lineage:family", "lineage:layout", "result_detail", "api_schema", "admin:index"):
        assert f" {route} " in text, route
    assert " POST lineage:import " in text and text.splitlines()[-1].endswith(" ms")
    # One transaction, rolled back: the timed submissions left no job, upload or graph.
    assert (Job.objects.count(), LineageGraph.objects.count()) == before and not LineageUpload.objects.exists()
