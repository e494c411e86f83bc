"""Checks that run before FastAPI parses a body: the API key (constant-time compare), the content type and
UTF-8. A custom APIRoute class (FastAPI's documented hook for this) so each route declares what it accepts."""

from __future__ import annotations

import secrets
from typing import Callable

from fastapi import Request, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from jobtitles.serve.http_errors import ApiError

# Declared as security schemes so /docs shows them; checked in `check_api_key`.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The server's --api_key")
bearer = HTTPBearer(auto_error=False, description="The server's --api_key (what huggingface_hub sends)")


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    return key


def check_api_key(request: Request) -> None:
    expected: str | None = request.app.state.settings.api_key
    if not expected:
        return
    presented = _presented_key(request)
    if presented is None or not secrets.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(401, "unauthorized",
                       "missing or wrong API key; send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})


async def api_key_dependency(request: Request, _key: str | None = Security(api_key_header),
                             _bearer: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    """Shows the key in /docs. The route classes below check it before the body is read; a route without one
    of them is checked here, so every protected request is checked exactly once."""
    if not getattr(request.state, "api_key_checked", False):
        check_api_key(request)


class _CheckedRoute(APIRoute):
    content_type: str | None = None   # what POST bodies must be
    protected = True

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        content_type, protected = self.content_type, self.protected

        async def checked(request: Request):
            if protected:
                check_api_key(request)
                request.state.api_key_checked = True
            if content_type and request.method == "POST":
                found = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if found != content_type:
                    raise ApiError(415, "unsupported_media_type",
                                   f"expected Content-Type {content_type}, found {found or 'none'}")
                if content_type == "application/json":
                    raw = await request.body()  # cached on the request: FastAPI reads the same bytes
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError as err:
                        raise ApiError(400, "invalid_utf8", f"the body is not valid UTF-8 (byte 0x{raw[err.start]:02x} "
                                       f"at offset {err.start}); send JSON encoded as UTF-8") from err
            return await handler(request)

        return checked


class JSONRoute(_CheckedRoute):
    content_type = "application/json"


class UploadRoute(_CheckedRoute):
    content_type = "multipart/form-data"


class ProtectedRoute(_CheckedRoute):
    """GET routes that need the key."""
