"""What every JSON API view answers with: error bodies, JSON request bodies, the CSRF rule, the OpenAPI fragments."""

from __future__ import annotations

from django.http import JsonResponse
from django.http.request import RawPostDataException
from ninja.utils import check_csrf

from webapp.api.schemas import Error
from webapp.bounded_json import parse_json

MAX_JSON_BODY = 256 * 1024


def error_response(status: int, message: str, errors: dict | None = None) -> JsonResponse:
    body = {"error": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def read_json(request) -> dict:
    """The body as a JSON object; JsonRejected names the field (a top-level key, or "body")."""
    from webapp.bounded_json import JsonRejected

    try:
        raw = request.body
    except RawPostDataException:  # a form or multipart body, already parsed as such
        raise JsonRejected("body", "send a JSON object with Content-Type: application/json") from None
    return parse_json(raw or b"{}", field="body", max_bytes=MAX_JSON_BODY, keyed=True, expect=dict)


def login_required(request, message: str = "log in first, or send Authorization: Bearer <token>") -> JsonResponse | None:
    return None if request.user.is_authenticated else error_response(401, message)


def csrf_refused(request) -> JsonResponse | None:
    """Session (cookie) requests that change something need Django's CSRF token; bearer requests do not
    (the token middleware marks them)."""
    if check_csrf(request) is None:
        return None
    return error_response(403, "CSRF check failed: send the X-CSRFToken header, or use a bearer token")


def json_body(name: str, description: str = "") -> dict:
    """openapi_extra of an operation whose JSON body is the component schema `name` (read by read_json)."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}}


REFUSED = {401: Error, 403: Error, 404: Error}
