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


def openapi_schema() -> dict:
    error = {"type": "object", "properties": {"error": {"type": "string"}, "errors": {"type": "object"}}}
    slug = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
    not_found = {"description": "unknown or private", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    json_of = lambda schema: {"application/json": {"schema": schema}}  # noqa: E731
    return {
        "openapi": "3.1.0",
        "info": {"title": "Terrain API", "version": "1"},
        "components": {"schemas": {"JobState": _job_state(), "Error": error}},
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
                        "401": {"description": "not logged in"},
                        "429": {"description": "over a per-user job limit; see the Retry-After header",
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
            "/api/kinds/": {"get": {"responses": {"200": {"description": "job kinds and their parameters"}}}},
        },
    }
