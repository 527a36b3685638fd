"""The live protocol of one job (Zulip-style: snapshot, then events by seq).

Client -> server: connect to /ws/jobs/<slug>/?after=<last seq seen>;
                  {"type": "resync", "after": N} when it notices a gap.
Server -> client: {"type": "snapshot", "job": {...}, "events": [...]} first,
                  then {"type": "event", "seq", "kind", "payload", "status", "progress"};
                  {"type": "error", "error": "..."} for a frame it cannot read (the connection stays).
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.bounded_json import JsonRejected, parse_json
from webapp.jobs import selectors

CLOSE_NOT_FOUND = 4404
MAX_FRAME_BYTES = 4096  # a client only ever sends a small resync request
MAX_SEQ = 2**63 - 1  # event seq is a bigint


def _parse_after(value) -> int:
    try:
        return min(MAX_SEQ, max(0, int(value)))
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e999)
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

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Like the JSON consumer's, but a frame that is binary, too big or not JSON gets a short error
        answer instead of an exception (which closed the connection with 1011 and logged a traceback)."""
        if text_data is None:
            await self.send_json({"type": "error", "error": "send JSON as text frames"})
            return
        try:
            content = parse_json(text_data, field="message", max_bytes=MAX_FRAME_BYTES)
        except JsonRejected as exc:
            await self.send_json({"type": "error", "error": str(exc)[:200]})
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "resync":
            await self._send_snapshot(_parse_after(content.get("after")))

    async def job_event(self, message):
        await self.send_json({"type": "event", **{k: v for k, v in message.items() if k != "type"}})

    async def _send_snapshot(self, after: int):
        snapshot = await database_sync_to_async(selectors.job_snapshot)(job_id=self.job_id, after=after)
        await self.send_json({"type": "snapshot", **snapshot})
