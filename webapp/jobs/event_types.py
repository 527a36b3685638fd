"""The shape of job events: one pydantic model per event kind (as Zulip's event_types.py).

Every job kind declares the events it emits (`JobKind.events`, kind name -> model);
`status` belongs to the protocol and every job has it.  `job_event_append` checks
each payload against its model before storing it, so the browser, the snapshot and
the exports only ever see declared shapes.  The payload is stored as given: the
models check, they do not rewrite what goes on the wire.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Record(BaseModel):
    """A nested record of a payload; an undeclared key is an error, not silently passed on."""

    model_config = ConfigDict(extra="forbid")


class EventPayload(Record):
    """A declared event payload."""

    # The fan-out tags each event of a part with the part's index (webapp.jobs.fanout.PartContext.emit).
    part: int | None = None


class OpenPayload(BaseModel):
    """A nested record whose keys vary by source (e.g. a model's provenance): only its declared keys are checked."""

    model_config = ConfigDict(extra="allow")


class StatusEvent(EventPayload):
    """A job's state change: running (with the attempt and device), or final (with its result or error)."""

    status: str
    attempt: int | None = None
    device: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


PROTOCOL_EVENTS: dict[str, type[EventPayload]] = {"status": StatusEvent}


class EventRefused(ValueError):
    """An event the job's kind does not declare, or whose payload does not fit its declaration."""


def event_payload_check(*, job_kind: str, kind: str, payload: dict) -> None:
    """Raise EventRefused unless `payload` is a declared `kind` of event for jobs of `job_kind`."""
    from webapp.jobs import kinds

    model = PROTOCOL_EVENTS.get(kind) or kinds.get(job_kind).events.get(kind)
    if model is None:
        raise EventRefused(f"job kind {job_kind!r} declares no {kind!r} event")
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        raise EventRefused(f"{job_kind!r} event {kind!r} is ill-shaped: {exc}") from exc
