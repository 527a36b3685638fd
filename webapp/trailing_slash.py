"""A POST (PUT, PATCH, DELETE) that leaves off its route's trailing slash is served by that route.

Django's CommonMiddleware answers such a request with a redirect to the slashed URL, which a
client follows with a GET and no body; with DEBUG on it raises RuntimeError instead (a 500).
The site's POST routes differ here (the web's /r/<slug>/cancel has no slash, the API's
/api/jobs/<slug>/cancel/ has one), so the path is completed in place, and GETs still redirect.
"""

from __future__ import annotations

from django.middleware.common import CommonMiddleware

READS = ("GET", "HEAD", "OPTIONS")


class CompleteTheSlash(CommonMiddleware):
    def process_request(self, request):
        if request.method not in READS and self.should_redirect_with_slash(request):
            request.path_info += "/"
            request.path += "/"
        return super().process_request(request)
