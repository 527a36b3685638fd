"""Which storage keeps Terrain's files, from environment variables (read by settings.py).

Kept apart from settings.py so that tests and tools build the same STORAGES entry
from the same variables a web server or worker on another host would be given.
"""

from __future__ import annotations

from collections.abc import Mapping


def default_storage_config(env: Mapping[str, str]) -> dict:
    """The local folder, or an S3-compatible object store when TERRAIN_S3_BUCKET is set."""
    bucket = env.get("TERRAIN_S3_BUCKET", "")
    if not bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": env.get("TERRAIN_S3_ENDPOINT_URL") or None,
            "region_name": env.get("TERRAIN_S3_REGION") or None,
            "access_key": env.get("TERRAIN_S3_ACCESS_KEY_ID") or None,
            "secret_key": env.get("TERRAIN_S3_SECRET_ACCESS_KEY") or None,
            "location": env.get("TERRAIN_S3_PREFIX", ""),
            # Objects are private; a download is a signed URL that expires within minutes.
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": int(env.get("TERRAIN_S3_SIGNED_URL_SECONDS", "300")),
            "file_overwrite": False,
            "addressing_style": env.get("TERRAIN_S3_ADDRESSING_STYLE", "path"),
            "signature_version": "s3v4",
        },
    }
