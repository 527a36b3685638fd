"""Which Hugging Face Hub client the import form uses.

The real ``HfHubClient`` by default.  ``TERRAIN_HUB_RECORDINGS`` (a directory
of recorded ``/api/models/{id}`` JSON bodies, like tests/lineage/fixtures/hub)
switches to ``RecordedHubClient``: offline demos and subprocess tests never
touch the network.  In-process tests monkeypatch ``hub_client``.
"""

from __future__ import annotations

import os

from analysis.lineage.hub import HfHubClient, RecordedHubClient


def hub_client():
    recordings = os.environ.get("TERRAIN_HUB_RECORDINGS")
    if recordings:
        return RecordedHubClient.from_directory(recordings)
    return HfHubClient(timeout=10.0)
