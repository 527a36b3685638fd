"""The live protocol of one job (Zulip-style: snapshot, then events by seq).

Client -> server: connect to /ws/jobs/<slug>/?after=<last seq seen>;
                  {"type": "resync", "after": N} when it notices a gap.
Server -> client: {"type": "snapshot", "job": {...}, "events": [...]} first,
                  then {"type": "event", "seq", "kind", "payload", "status", "progress"}.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.jobs import selectors

CLOSE_NOT_FOUND = 4404


def _parse_after(value) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


class JobConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        slug = self.scope["url_route"]["kwargs"]["slug"]
        job = await database_sync_to_async(selectors.job_get_visible)(slug=slug, user=self.scope.get("user"))
        if job is None:
            # Unknown and private-to-someone-else look the same.
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.job_id = job.pk
        self.group = job.channel_group
        # Join before reading the snapshot so no event falls between the two; the client drops duplicates.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        await self._send_snapshot(_parse_after(query.get("after", ["0"])[0]))

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "resync":
            await self._send_snapshot(_parse_after(content.get("after")))

    async def job_event(self, message):
        await self.send_json({"type": "event", **{k: v for k, v in message.items() if k != "type"}})

    async def _send_snapshot(self, after: int):
        snapshot = await database_sync_to_async(selectors.job_snapshot)(job_id=self.job_id, after=after)
        await self.send_json({"type": "snapshot", **snapshot})
