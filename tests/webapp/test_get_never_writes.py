"""GET never writes: every GET route, walked as an anonymous visitor, a user and staff on a small
site with one of everything, runs no INSERT, UPDATE or DELETE (beyond the allowed ones below)."""

import re

import pytest

from tests.webapp.small_site import small_site
from webapp import route_walk

pytestmark = pytest.mark.django_db

# Writes a GET may make, and why.
ALLOWED_WRITES = {
    # The session: showing a flash message consumes it from the session, which is then saved.
    "django_session": "a shown message is removed from the session",
    # API tokens' last_used_at: a hint for the owner, written at most once a minute (accounts/tokens.py).
    "accounts_apitoken": "last_used_at, at most once a minute",
}
# Routes that only answer POST (a GET is a 405): what they do is not a GET's business.
POST_ONLY = {"result_cancel", "result_visibility", "api_job_cancel", "api_run_finish", "account_token_revoke",
             "logout", "lineage:delete", "sweep_resume", "sweep_run_landscape", "api_run_checkpoints"}


def _table(sql: str) -> str:
    match = re.search(r'(?:INTO|UPDATE|FROM)\s+"?(\w+)"?', sql, re.I)
    return match.group(1) if match else sql[:60]


@pytest.fixture
def site(user, tmp_path, media):
    return small_site(owner=user, tmp_path=tmp_path)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_no_get_writes_for_anyone(client, site, user, staff_user):
    from django.test import Client

    visited = set()
    extra = (f"/compare/?a={site['job'].slug}", f"/lineage/{site['graph'].slug}/search.json?q=org",
             f"/lineage/{site['graph'].slug}/find/?q=org/b", f"/lineage/{site['graph'].slug}/node.json?id=org/b")
    for who, visitor in (("anonymous", None), ("user", user), ("staff", staff_user)):
        browser = Client()
        if visitor is not None:
            browser.force_login(visitor)
        visits = route_walk.walk(browser, include_admin=visitor is staff_user, extra=extra)
        bad = [(who, v.url, _table(sql)) for v in visits for sql in v.writes if _table(sql) not in ALLOWED_WRITES]
        assert bad == [], bad
        errors = [(who, v.url, v.status) for v in visits if v.status >= 500]
        assert errors == [], errors
        visited |= {v.route for v in visits if v.status < 400 or v.status == 405}
    missing = route_walk.route_names() - visited - POST_ONLY
    assert missing == set(), f"routes no walk reached (a page should link them): {sorted(missing)}"


def test_the_walk_catches_a_get_that_writes(client, site, monkeypatch):
    """The check above can fail: a page made to write is caught, with its table."""
    from webapp.catalog.models import Tag
    from webapp.lineage import selectors

    visible = selectors.graphs_visible

    def writing(**kwargs):
        Tag.objects.create(name="written on a GET")
        return visible(**kwargs)

    monkeypatch.setattr(selectors, "graphs_visible", writing)
    visits = route_walk.walk(client, entry_pages=("/lineage/",), limit=1)
    assert [(v.route, [_table(sql) for sql in v.writes]) for v in visits] == [("lineage:index", ["catalog_tag"])]
