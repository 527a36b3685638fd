"""A real S3-compatible HTTP server for the tests: moto's standalone server on a free port.

Everything outside this machine is S3 itself; moto speaks its HTTP protocol (signed
requests, buckets, objects, presigned URLs), so the app talks to it exactly as it
would to AWS S3 or MinIO.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from webapp.embedded_redis import free_port

ACCESS_KEY = "terrain-test"
SECRET_KEY = "terrain-test-secret"
REGION = "us-east-1"


@dataclass
class ObjectStore:
    bucket: str = "terrain-test"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> "ObjectStore":
        log = open(log_dir / "moto.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2)
                break
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("moto server exited")
                time.sleep(0.2)
        else:
            raise RuntimeError("moto server did not start")
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )

    def keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def env(self) -> dict:
        """The settings a web server or worker on any host needs to use this store."""
        return {
            "TERRAIN_S3_BUCKET": self.bucket,
            "TERRAIN_S3_ENDPOINT_URL": self.endpoint,
            "TERRAIN_S3_REGION": REGION,
            "TERRAIN_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "TERRAIN_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def storages_setting(self) -> dict:
        """The STORAGES setting for the test process: what settings.py builds from env()."""
        from django.conf import settings

        from webapp.storage_settings import default_storage_config

        return {**settings.STORAGES, "default": default_storage_config(self.env())}

    def stop(self) -> None:
        from tests.stack import terminate

        terminate(self.process)
