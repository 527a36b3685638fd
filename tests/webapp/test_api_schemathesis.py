"""The generated OpenAPI document against the API itself: schemathesis generates requests from the
schema (every operation, every job kind's params) and holds each response to it: no 500, every
status, content type, header and body as documented.  Bounded (max_examples per operation),
through the WSGI app in this process (no network, no server)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from webapp.accounts.tokens import token_create
from webapp.api.app import api
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
MAX_EXAMPLES = 15

def served() -> dict:
    """What GET /api/schema/ serves (JSON: status codes as strings)."""
    return json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/")))


schema = schemathesis.openapi.from_dict(served())
schema.app = get_wsgi_application()


@pytest.fixture
def bearer(user, monkeypatch, settings):
    """A logged-in user's write token and one public job; nothing reaches Celery; no per-user limits in the way."""
    from webapp.jobs import services

    settings.ALLOWED_HOSTS = ["*"]  # schemathesis' WSGI client says Host: localhost
    settings.TERRAIN_MAX_SUBMISSIONS_PER_MINUTE = 10_000
    settings.TERRAIN_MAX_ACTIVE_JOBS_PER_USER = 10_000
    monkeypatch.setattr(services, "job_enqueue", lambda *, job: None)
    # Django closes the database connection after each WSGI request; the test's transaction must
    # outlive them (Django's own test client arranges the same).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    Job.objects.create(kind="train", owner=user, visibility=Visibility.PUBLIC, status="succeeded", result={"final": 1})
    yield {"Authorization": f"Bearer {token_create(user=user, name='schemathesis').secret}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate], derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_schema_says(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)


def test_the_schema_served_is_the_one_tested(client):
    assert client.get("/api/schema/").json() == served()
