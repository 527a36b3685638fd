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
        return self.get_response(request)


def _bad_request(request, field: str, message: str):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message, "errors": {field: [message]}}, status=400)
    return HttpResponseBadRequest(f"<!doctype html><title>Bad request</title><h1>Bad request (400)</h1>"
                                  f"<p data-field=\"{field}\">{escape(message)}</p>")
