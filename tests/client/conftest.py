import sys

import pytest

from tests.stack import ROOT

# The client is tested from its source folder, as a script would use it after `pip install ./client`.
if str(ROOT / "client") not in sys.path:
    sys.path.insert(0, str(ROOT / "client"))


@pytest.fixture
def wsgi_session(transactional_db, user):
    """A client session that reaches the Django app in-process (committed data: the uploader thread has its own connection)."""
    import httpx
    from django.core.handlers.wsgi import WSGIHandler

    import terrain
    from webapp.accounts.tokens import token_create

    def make(scope="write", transport=None):
        issued = token_create(user=user, name=f"test {scope}", scope=scope)
        return terrain.Session("http://testserver", issued.secret, transport=transport or httpx.WSGITransport(app=WSGIHandler()))

    return make


@pytest.fixture
def no_enqueue(monkeypatch):
    from webapp.jobs import services

    queued = []
    monkeypatch.setattr(services, "job_enqueue", lambda *, job: queued.append(job))
    return queued
