"""Request floods refused before any view sees them."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.html import escape

FLOODS = (TooManyFieldsSent, TooManyFilesSent, RequestDataTooBig)


class RejectRequestFloods:
    """Parse the query string (and a form body) up front, so a flood (e.g. ?p0=1&...&p1999=1, over
    DATA_UPLOAD_MAX_NUMBER_FIELDS) is a 400 here.  Left to a view, Django raises it there, and with
    DEBUG on the error page reads the same query again and turns the 400 into a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = "query"
        try:
            request.GET  # noqa: B018  (parsing is the point)
            if request.method == "POST":
                field = "body"
                request.POST  # noqa: B018
        except FLOODS as exc:
            return _bad_request(request, field, str(exc))
        # No NUL in a query string: PostgreSQL refuses it in text (a 500 from any query that carries it).
        # Form bodies are checked where they are validated (job_params_validate, Django's CharField).
        for data in (request.GET,):
            for key, values in data.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    name = key.replace("\x00", "")
                    return _bad_request(request, name, f"{name}: contains a NUL character")
        return self.get_response(request)


def _bad_request(request, field: str, message: str):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message, "errors": {field: [message]}}, status=400)
    return HttpResponseBadRequest(f"<!doctype html><title>Bad request</title><h1>Bad request (400)</h1>"
                                  f"<p data-field=\"{field}\">{escape(message)}</p>")
