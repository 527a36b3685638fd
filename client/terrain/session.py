"""Where the server is and who you are: `terrain.init(url=..., token=...)` or TERRAIN_URL / TERRAIN_TOKEN."""

from __future__ import annotations

import os
from typing import Any

import httpx

from terrain.errors import TerrainError, ValidationError, from_response

USER_AGENT = "terrain-client/0.1"


class Session:
    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None):
        url = url or os.environ.get("TERRAIN_URL")
        token = token or os.environ.get("TERRAIN_TOKEN")
        if not url:
            raise ValidationError("url: give terrain.init(url=...) or set TERRAIN_URL", errors={"url": ["required"]})
        if not token:
            raise ValidationError("token: give terrain.init(token=...) or set TERRAIN_TOKEN (create one at /accounts/tokens/)",
                                  errors={"token": ["required"]})
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.transport = transport  # e.g. a WSGI transport in tests; None: the network
        self._http = self.new_http_client()

    def new_http_client(self) -> httpx.Client:
        """One per thread that talks to the server (the uploader has its own)."""
        return httpx.Client(base_url=self.url, timeout=self.timeout, headers=self.headers, transport=self.transport)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT}

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):] if self.url.startswith("http") else self.url

    def request(self, method: str, path: str, *, http: httpx.Client | None = None, **kwargs: Any) -> dict:
        """One API call; an error status raises the matching TerrainError (naming the fields at fault)."""
        response = (http or self._http).request(method, path, **kwargs)
        return check(response)

    def get(self, path: str, **kwargs: Any) -> dict:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> dict:
        return self.request("POST", path, **kwargs)


def check(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:500]}
    if response.status_code >= 400:
        raise from_response(response.status_code, body if isinstance(body, dict) else {}, response.headers.get("Retry-After"))
    return body


_default: Session | None = None


def init(url: str | None = None, token: str | None = None, **kwargs: Any) -> Session:
    """Set the server and token every later call uses (defaults: TERRAIN_URL and TERRAIN_TOKEN)."""
    global _default
    _default = Session(url, token, **kwargs)
    return _default


def current() -> Session:
    if _default is None:
        try:
            return init()
        except ValidationError as exc:
            raise TerrainError(f"call terrain.init(url=..., token=...) first ({exc})") from None
    return _default
