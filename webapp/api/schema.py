"""A hand-written OpenAPI 3.1 description of the JSON API (job kinds from the JobKind registry)."""

from webapp.jobs import kinds


def _kind_names() -> list[str]:
    return [kind.name for kind in kinds.all_kinds()]


def _job_state():
    return {
        "type": "object",
        "properties": {
            "slug": {"type": "string"},
            "kind": {"type": "string", "enum": _kind_names()},
            "title": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "device": {"type": "string"},
            "attempts": {"type": "integer"},
            "error": {"type": "string"},
            "result": {"type": ["object", "null"]},
            "last_seq": {"type": "integer"},
        },
    }


def _run_state():
    checkpoint = {
        "type": "object",
        "properties": {
            "step": {"type": "integer"},
            "source": {"type": "string", "enum": ["terrain", "hf", "lora"]},
            "sha256": {"type": "string"},
            "num_parameters": {"type": "integer"},
            "checkpoint": {"type": ["string", "null"], "description": "catalog checkpoint slug (Terrain spec models)"},
        },
    }
    return {
        "type": "object",
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "experiment": {"type": "string"},
            "config": {"type": "object"},
            "finished": {"type": "boolean"},
            "url": {"type": "string"},
            "checkpoints": {"type": "array", "items": checkpoint},
            "metric_steps": {"type": "integer"},
        },
    }


def _run_paths(slug, json_of, error_ref) -> dict:
    refused = {
        "401": {"description": "no valid session or token"},
        "403": {"description": "read-only token, or not the run's owner"},
        "404": {"description": "unknown run, or one you may not see"},
    }
    run_ref = json_of({"$ref": "#/components/schemas/RunState"})
    invalid = {"description": "invalid input, by field", "content": json_of(error_ref)}
    metric_rows = {
        "type": "array",
        "items": {"type": "object", "required": ["step", "metrics"],
                  "properties": {"step": {"type": "integer", "minimum": 0},
                                 "metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}}}},
    }
    return {
        "/api/runs/": {
            "post": {
                "summary": "Start a run in one of your experiments (found by title or slug, created if new)",
                "requestBody": {"content": json_of({"type": "object", "required": ["experiment"], "properties": {
                    "experiment": {"type": "string"}, "name": {"type": "string"}, "config": {"type": "object"}}})},
                "responses": {"201": {"description": "the run", "content": run_ref}, "400": invalid, **refused},
            }
        },
        "/api/runs/{slug}/": {"get": {"parameters": [slug], "responses": {"200": {"description": "the run", "content": run_ref}, **refused}}},
        "/api/runs/{slug}/metrics/": {
            "get": {"parameters": [slug], "responses": {"200": {"description": "metric rows in step order",
                                                                "content": json_of({"type": "object", "properties": {"rows": metric_rows}})}}},
            "post": {
                "summary": "Log metric rows (a step logged again merges its values, so retries are harmless)",
                "parameters": [slug],
                "requestBody": {"content": json_of({"type": "object", "required": ["rows"], "properties": {"rows": metric_rows}})},
                "responses": {"200": {"description": "stored"}, "400": invalid, **refused},
            },
        },
        "/api/runs/{slug}/checkpoints/": {
            "post": {
                "summary": "Upload the checkpoint of a step: safetensors with terrain.format terrain.checkpoint.v1, terrain.hf.v1 or terrain.lora.v1",
                "parameters": [slug],
                "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "required": ["step", "file"], "properties": {
                    "step": {"type": "integer"}, "file": {"type": "string", "format": "binary"}}}}}},
                "responses": {
                    "201": {"description": "stored"},
                    "200": {"description": "the same file was already stored for this step (a retry)"},
                    "400": invalid,
                    "409": {"description": "this step already has a different checkpoint", "content": json_of(error_ref)},
                    **refused,
                },
            }
        },
        "/api/runs/{slug}/finish/": {"post": {"parameters": [slug], "responses": {"200": {"description": "the run", "content": run_ref}, **refused}}},
    }


def openapi_schema() -> dict:
    error = {"type": "object", "properties": {"error": {"type": "string"}, "errors": {"type": "object"}}}
    slug = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
    not_found = {"description": "unknown or private", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    json_of = lambda schema: {"application/json": {"schema": schema}}  # noqa: E731
    return {
        "openapi": "3.1.0",
        "info": {"title": "Terrain API", "version": "1"},
        "components": {
            "schemas": {"JobState": _job_state(), "RunState": _run_state(), "Error": error},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A personal API token from /accounts/tokens/ (trn_...); read scope allows GET only. No CSRF token needed."},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid",
                            "description": "The browser session; unsafe methods also need the X-CSRFToken header."},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/jobs/": {
                "get": {"summary": "Your jobs", "responses": {"200": {"description": "jobs"}, "401": {"description": "not logged in"}}},
                "post": {
                    "summary": "Start a job",
                    "requestBody": {
                        "content": json_of(
                            {
                                "type": "object",
                                "required": ["kind", "params"],
                                "properties": {
                                    "kind": {"type": "string", "enum": _kind_names()},
                                    "params": {"type": "object"},
                                    "visibility": {"type": "string", "enum": ["private", "unlisted", "public"]},
                                    "experiment": {"type": "string"},
                                },
                            }
                        )
                    },
                    "responses": {
                        "201": {"description": "queued", "content": json_of({"$ref": "#/components/schemas/JobState"})},
                        "400": {"description": "invalid parameters, by field", "content": json_of({"$ref": "#/components/schemas/Error"})},
                        "401": {"description": "not logged in (session or bearer token)"},
                        "403": {"description": "read-only token"},
                        "429": {"description": "over a per-user limit (queued jobs or submissions a minute); see Retry-After",
                                "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
                                "content": json_of({"$ref": "#/components/schemas/Error"})},
                    },
                },
            },
            "/api/jobs/{slug}/": {"get": {"parameters": [slug], "responses": {"200": {"description": "job"}, "404": not_found}}},
            "/api/jobs/{slug}/events/": {
                "get": {
                    "parameters": [slug, {"name": "after", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "events with seq > after"}, "400": {"description": "after is not a whole number"},
                                  "404": not_found},
                }
            },
            "/api/jobs/{slug}/cancel/": {"post": {"parameters": [slug], "responses": {
                "200": {"description": "cancelled or cancelling"}, "403": {"description": "not the owner"}, "404": not_found}}},
            "/api/experiments/": {"get": {"responses": {"200": {"description": "the public catalog"}}}},
            "/api/showcase/": {"get": {"responses": {"200": {"description": "the demo's finished result of every kind: key, kind, status, url"}}}},
            "/api/kinds/": {"get": {"responses": {"200": {"description": "job kinds and their parameters"}}}},
            **_run_paths(slug, json_of, {"$ref": "#/components/schemas/Error"}),
        },
    }
