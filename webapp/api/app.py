"""The JSON API (django-ninja): its routes, its generated OpenAPI document at /api/schema/, its error bodies.

Every error is `{"error": message, "errors": {field: [messages]}}` with 400/401/403/404/429, as the
pages' forms name fields.  Authentication is Django's: the session, or `Authorization: Bearer`
(webapp.accounts.middleware, which also lifts CSRF for bearer requests); the views check the user.
"""

from __future__ import annotations

from django.urls import path, reverse
from ninja import NinjaAPI
from ninja.errors import ValidationError

from webapp.api import runs, schemas, views
from webapp.api.responses import error_response
from webapp.jobs import kinds

REF = "#/components/schemas/{model}"
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A personal API token from /accounts/tokens/ (trn_...); read scope allows GET only. No CSRF token needed."},
    "session": {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "The browser session; unsafe methods also need the X-CSRFToken header."},
}


class TerrainAPI(NinjaAPI):
    """NinjaAPI with the site's route names (api_jobs, api_schema...: no namespace, one per path) and
    the component schemas it cannot see (the bodies the views read themselves, the security schemes)."""

    def _get_urls(self):
        patterns, seen = [], set()
        for pattern in super()._get_urls():
            route = str(pattern.pattern)
            if pattern.name == "api-root" or route in seen:  # one pattern per path (its methods share the view)
                continue
            seen.add(route)
            if pattern.name == "openapi-json":
                pattern = path(route, pattern.callback, name="api_schema")
            patterns.append(pattern)
        return patterns

    def get_root_path(self, path_params):
        return reverse("api_schema", kwargs=path_params).removesuffix("schema/")

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {})
        found = components.setdefault("schemas", {})
        found.update(schemas.submission_schemas(REF))  # built from the registry on each request: every kind
        for model in views.BODIES + runs.BODIES:
            body = model.model_json_schema(ref_template=REF)
            found.update(body.pop("$defs", {}))
            found[model.__name__] = body
        names = sorted(kind.name for kind in kinds.all_kinds())
        for state in ("JobState", "JobCreated", "JobDetail"):
            found[state]["properties"]["kind"]["enum"] = names
        components["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{"bearer": []}, {"session": []}]
        return schema


api = TerrainAPI(title="Terrain API", version="1", openapi_url="/schema/", docs_url=None,
                 description="Start and follow jobs of every kind, read the public catalog, log runs from a script.")
api.add_router("", views.router)
api.add_router("", runs.router)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    """A query or path value of the wrong type: a 400 naming the parameter."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        loc = [part for part in error.get("loc", ()) if part not in ("query", "path", "body")]
        errors.setdefault(str(loc[0]) if loc else "query", []).append(error.get("msg", "invalid"))
    return error_response(400, "invalid query", errors)
