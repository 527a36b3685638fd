"""A throw-away Terrain for benchmarks with real workers: temp var dir, embedded Redis, migrated database.

The database is DATABASE_URL's (use PostgreSQL for many workers) or a SQLite file in the temp dir.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_local_stack():
    """Configure and set up Django here; return (var dir, embedded Redis to stop, the benchmark user)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    var = Path(tempfile.mkdtemp(prefix="terrain-bench-"))
    os.environ.update(TERRAIN_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="webapp.settings", TERRAIN_TORCH_THREADS="1",
                      OMP_NUM_THREADS="1", TERRAIN_CHANNEL_PREFIX="terrain-bench")
    from webapp.embedded_redis import EmbeddedRedis

    redis = EmbeddedRedis(var / "redis").start()
    os.environ["REDIS_URL"] = redis.url
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}; cores here: {os.cpu_count()}; load average {os.getloadavg()}", flush=True)
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    return var, redis, owner
