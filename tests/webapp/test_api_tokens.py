"""Personal API tokens: issued once, stored hashed, scoped, expiring, revocable; limits apply."""

import hashlib
from datetime import timedelta

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from webapp.accounts.models import ApiToken
from webapp.accounts.tokens import token_create, token_revoke
from webapp.accounts.websocket import TokenAuthMiddleware
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job
from webapp.jobs.routing import websocket_urlpatterns
from webapp.runs.services import run_create

pytestmark = pytest.mark.django_db

TRAIN = {"kind": "train", "params": {"epochs": 1, "hidden": "8"}}


@pytest.fixture
def no_enqueue(monkeypatch):
    from webapp.jobs import services

    monkeypatch.setattr(services, "job_enqueue", lambda *, job: None)


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_tokens_page_shows_the_secret_once_and_stores_only_its_hash(client, user):
    client.force_login(user)
    response = client.post("/accounts/tokens/", {"name": "laptop", "scope": "write", "expires_in_days": "30"})
    assert response.status_code == 200
    secret = response.context["new_secret"]
    assert secret.startswith("trn_") and secret.encode() in response.content
    token = ApiToken.objects.get(user=user)
    assert token.name == "laptop" and token.scope == "write"
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    stored = " ".join(str(getattr(token, f.attname)) for f in ApiToken._meta.concrete_fields)
    assert secret.split("_", 2)[2] not in stored
    assert token.secret_hash == hashlib.sha256(secret.split("_", 2)[2].encode()).hexdigest()
    listing = client.get("/accounts/tokens/")
    assert b"laptop" in listing.content and secret.encode() not in listing.content
    client.post(f"/accounts/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.revoked


def test_a_valid_token_authenticates_every_api_route(client, user):
    issued = token_create(user=user, name="ci")
    assert client.get("/api/jobs/").status_code == 401
    response = client.get("/api/jobs/", **bearer(issued.secret))
    assert response.status_code == 200 and response.json() == {"jobs": []}
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None


def test_unknown_malformed_revoked_and_expired_tokens_are_refused(client, user):
    assert client.get("/api/jobs/", **bearer("nonsense")).json()["error"].startswith("malformed")
    good = token_create(user=user, name="x")
    forged = good.secret[:-4] + "AAAA"
    assert client.get("/api/jobs/", **bearer(forged)).json() == {"error": "unknown API token"}
    revoked = token_create(user=user, name="old")
    token_revoke(user=user, token_id=revoked.token.pk)
    response = client.get("/api/jobs/", **bearer(revoked.secret))
    assert response.status_code == 401 and "revoked" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    expired = token_create(user=user, name="short", expires_in_days=1)
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/jobs/", **bearer(expired.secret))
    assert response.status_code == 401 and "expired" in response.json()["error"]


def test_a_read_only_token_cannot_write(client, user, no_enqueue):
    issued = token_create(user=user, name="dashboard", scope="read")
    assert client.get("/api/jobs/", **bearer(issued.secret)).status_code == 200
    response = client.post("/api/jobs/", TRAIN, content_type="application/json", **bearer(issued.secret))
    assert response.status_code == 403
    assert response.json()["error"] == "token 'dashboard' is read-only: POST needs a token with write scope"
    response = client.post("/api/runs/", {"experiment": "e"}, content_type="application/json", **bearer(issued.secret))
    assert response.status_code == 403
    assert Job.objects.count() == 0


def test_another_users_private_objects_are_404(client, user, other_user):
    job = Job.objects.create(kind="train", owner=other_user, visibility=Visibility.PRIVATE)
    run = run_create(owner=other_user, experiment="secret work")
    issued = token_create(user=user, name="mine")
    for url in (f"/api/jobs/{job.slug}/", f"/api/jobs/{job.slug}/events/", f"/api/runs/{run.slug}/", f"/api/runs/{run.slug}/metrics/"):
        assert client.get(url, **bearer(issued.secret)).status_code == 404, url
    response = client.post(f"/api/runs/{run.slug}/metrics/", {"rows": [{"step": 1, "metrics": {"loss": 1.0}}]},
                           content_type="application/json", **bearer(issued.secret))
    assert response.status_code == 404
    assert client.post(f"/api/jobs/{job.slug}/cancel/", **bearer(issued.secret)).status_code == 404


def test_over_the_rate_is_429_with_retry_after(client, user, settings, no_enqueue):
    settings.TERRAIN_MAX_SUBMISSIONS_PER_MINUTE = 2
    issued = token_create(user=user, name="loop")
    for _ in range(2):
        response = client.post("/api/jobs/", TRAIN, content_type="application/json", **bearer(issued.secret))
        assert response.status_code == 201, response.json()
    response = client.post("/api/jobs/", TRAIN, content_type="application/json", **bearer(issued.secret))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "at most 2 jobs per minute" in " ".join(sum(response.json()["errors"].values(), []))
    assert Job.objects.count() == 2


def test_too_many_active_jobs_is_429(client, user, settings, no_enqueue):
    settings.TERRAIN_MAX_ACTIVE_JOBS_PER_USER = 1
    issued = token_create(user=user, name="loop")
    assert client.post("/api/jobs/", TRAIN, content_type="application/json", **bearer(issued.secret)).status_code == 201
    response = client.post("/api/jobs/", TRAIN, content_type="application/json", **bearer(issued.secret))
    assert response.status_code == 429 and response["Retry-After"] == "30"


def test_bearer_requests_skip_csrf_but_cookie_requests_keep_it(user):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    body = {"experiment": "csrf check"}
    assert csrf_client.post("/api/runs/", body, content_type="application/json").status_code == 403
    issued = token_create(user=user, name="script")
    assert Client(enforce_csrf_checks=True).post("/api/runs/", body, content_type="application/json", **bearer(issued.secret)).status_code == 201


def test_bearer_only_applies_to_the_api(client, user):
    issued = token_create(user=user, name="script")
    # HTML pages keep session authentication: a token does not log a browser in.
    assert client.get("/me/", **bearer(issued.secret)).status_code == 302


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["query", "header"])
async def test_websocket_follows_a_private_job_with_a_token(user, how):
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import AnonymousUser

    job = await sync_to_async(Job.objects.create)(kind="train", owner=user, visibility=Visibility.PRIVATE)
    issued = await sync_to_async(token_create)(user=user, name="ws")
    app = TokenAuthMiddleware(URLRouter(websocket_urlpatterns))

    async def connect(secret):
        path = f"/ws/jobs/{job.slug}/" + (f"?token={secret}" if how == "query" else "")
        headers = [(b"authorization", f"Bearer {secret}".encode())] if how == "header" else []
        comm = WebsocketCommunicator(app, path, headers=headers)
        comm.scope["user"] = AnonymousUser()
        return comm, await comm.connect()

    comm, (connected, _) = await connect(issued.secret)
    assert connected
    snapshot = await comm.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot" and snapshot["job"]["slug"] == job.slug
    await comm.disconnect()
    await sync_to_async(token_revoke)(user=user, token_id=issued.token.pk)
    comm, (connected, code) = await connect(issued.secret)
    assert not connected and code == 4404
