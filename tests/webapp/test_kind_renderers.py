"""The renderer a result page loads is the one its kind declares: on the page, the embed and the standalone export."""

import re

import pytest

from webapp.catalog.visibility import Visibility
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db

SCRIPT_SRC = re.compile(r'<script src="/static/(js/[^"]+)"></script>')


def public_job(user, kind):
    return Job.objects.create(kind=kind, owner=user, visibility=Visibility.PUBLIC, status=JobStatus.SUCCEEDED, result={})


@pytest.mark.parametrize("kind, renderer", [
    ("landscape", "js/landscape_renderers.js"), ("hessian", "js/landscape_renderers.js"),
    ("connectivity", "js/landscape_renderers.js"), ("train", "js/training_renderers.js"), ("sweep", "js/phase_renderers.js"),
    ("merge", "js/merge_renderers.js"), ("merge_greedy", "js/merge_renderers.js"), ("lineage_recovery", "js/lineage_renderers.js"),
    ("lineage_import", "js/lineage_job_renderers.js"), ("kinship", "js/lineage_job_renderers.js"),
])
def test_the_page_and_the_embed_load_exactly_the_kinds_renderer(client, user, kind, renderer):
    job = public_job(user, kind)
    assert kinds.get(kind).renderers == (renderer,)
    for url in (f"/r/{job.slug}/", f"/r/{job.slug}/embed"):
        html = client.get(url).content.decode()
        assert SCRIPT_SRC.findall(html) == ["js/live.js", renderer, "js/result_page.js"], url
        assert "<script>" not in html.split('id="job-snapshot"')[0]  # nothing inlined into the kind's template


def test_each_renderer_file_defines_its_kinds_renderer():
    from webapp.staticfinders import static_text

    for kind in kinds.all_kinds():
        source = "".join(static_text(path) for path in kind.renderers)
        own = f"renderers.{kind.name} = function" in source
        assert own or kind.renderers == ("js/generic_renderer.js",), kind.name  # the tests' own kinds use the generic one


def test_the_standalone_export_inlines_the_lineage_renderer_once(client, user):
    from webapp.staticfinders import static_text

    job = public_job(user, "lineage_recovery")
    html = client.get(f"/r/{job.slug}/export.html").content.decode()
    assert html.count("renderers.lineage_recovery = function") == 1
    assert "renderers.landscape = function" not in html and "renderers.train = function" not in html
    assert static_text("js/result_page.js") in html
