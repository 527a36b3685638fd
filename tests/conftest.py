import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests import stack

# No test reaches the Hugging Face Hub: every process the tests start (workers too) answers
# Hub requests from the recordings in the repository.
os.environ.setdefault("TERRAIN_HUB_RECORDINGS", str(Path(__file__).parent / "lineage" / "fixtures" / "hub"))


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("ada", password="pw-ada-12345")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", password="pw-bob-12345")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("curator", password="pw-cur-12345", is_staff=True, is_superuser=True)


@pytest.fixture(scope="session")
def process_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("process-logs")


@pytest.fixture(scope="session")
def live_worker(django_db_setup, django_db_blocker, process_logs):
    """One real Celery worker process for the session, on the test database."""
    with django_db_blocker.unblock():
        worker = stack.Worker(name="session-worker", concurrency=1).start(process_logs)
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def live_web(django_db_setup, django_db_blocker, process_logs):
    """daphne serving the ASGI app (HTTP and websockets) on a free port."""
    with django_db_blocker.unblock():
        server = stack.WebServer().start(process_logs)
    yield server
    server.stop()


@pytest.fixture
def live_stack(transactional_db, live_worker, live_web):
    """Worker + web server; the test's writes are committed so both processes see them."""
    return {"worker": live_worker, "web": live_web}
