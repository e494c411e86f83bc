"""Every failed request gets the same JSON shape, {"error": {"code", "message", "field"}}, with a 4xx status that
says what was expected and what came; no traceback ever reaches a client."""

from __future__ import annotations

import sys
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException



class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **({"field": field} if field else {})}}
    return JSONResponse(body, status_code=status, headers=headers)


def internal_error() -> JSONResponse:
    return error_response(500, "internal_error", "internal error; the server log has the details")


def shown(text: object, limit: int = 80) -> str:
    """What a client sent, as it may appear in an answer: at most `limit` characters, and text that cannot be
    encoded as UTF-8 (lone surrogates) written as escapes, so echoing it can never fail or flood the answer."""
    text = str(text)
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def _type_name(value: object) -> str:
    return {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def _where(loc: tuple) -> str:
    """('body', 'titles', 'list[str]', 2) -> 'titles[2]': pydantic's union-branch names are dropped."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("str", "list[str]") and not str(part).startswith(("function-", "union[")):
            out += ("." if out else "") + shown(part, 40)  # a key name the client chose
    return out or "body"


def validation_message(errors: list[dict]) -> tuple[str, str, str]:
    """(code, field, message) for pydantic/FastAPI errors: the most specific one (deepest location)."""
    err = max(errors, key=lambda e: (sum(isinstance(p, int) for p in e.get("loc", ())), len(e.get("loc", ()))))
    kind, loc, found = err.get("type", ""), tuple(err.get("loc", ())), err.get("input")
    where = _where(loc)
    if kind == "json_invalid":
        ctx = err.get("ctx", {}).get("error", "")
        return "invalid_json", "body", f"the body is not valid JSON ({ctx}); expected e.g. {{\"titles\": [\"VP of Sales\"]}}"
    if kind == "missing" and where == "body":
        return "missing_body", "body", "the body is empty or null; expected a JSON object such as {\"titles\": [\"VP of Sales\"]}"
    if kind == "missing":
        return "missing_field", where, f"missing field '{where}'"
    if kind == "string_unicode":  # a key with a lone surrogate: pydantic cannot read it as a string
        return "invalid_text", where, (f"{where}: the key '{shown(found, 40)}' is not valid Unicode (a lone UTF-16 "
                                       f"surrogate); send valid Unicode")
    if kind == "extra_forbidden":
        return "unknown_field", where, f"unknown field '{where}'"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return "invalid_body", where, f"{where}: expected a JSON object, found {_type_name(found)}"
    if where == "file" and kind == "value_error":  # starlette's "Expected UploadFile, received: <class 'str'>"
        return "invalid_type", where, ("file: expected a file upload (multipart field 'file' with a file name), "
                                       "found a plain form field")
    if where.startswith(("titles", "inputs")) and kind in ("string_type", "list_type"):
        expected = "a string" if "[" in where else "a string or a list of strings"
        return "invalid_type", where, f"{where}: expected {expected}, found {_type_name(found)}"
    return "invalid_value", where, f"{where}: {err.get('msg', 'invalid value')} (found {_type_name(found)})"


def _unparsed_body(cause: BaseException | None) -> tuple[str, str]:
    """FastAPI answers 400 "There was an error parsing the body" for what json.loads raises besides a syntax
    error (and for broken multipart bodies); the cause says which limit of the JSON parser the body went past."""
    if isinstance(cause, RecursionError):
        return "invalid_json", ("the body is not valid JSON for this server: arrays or objects nested too deeply; "
                                "send a flat object such as {\"titles\": [\"VP of Sales\"]}")
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "invalid_json", (f"the body is not valid JSON for this server: a number has more than "
                                f"{sys.get_int_max_str_digits():,} digits; send shorter numbers")
    return "bad_request", "the body could not be parsed; expected JSON (application/json) or a multipart CSV upload"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        code, field, message = validation_message(list(exc.errors()))
        return error_response(400 if code == "invalid_json" else 422, code, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "error"
        detail = exc.detail if isinstance(exc.detail, str) else phrase
        where = f"{request.method} {shown(request.url.path, 200)}"
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            code, detail = _unparsed_body(exc.__cause__)
        elif exc.status_code == 404:
            detail = f"no route {where}; the API is listed at /docs"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "another method")
            detail = f"{where}: method not allowed; use {allowed}"
        return error_response(exc.status_code, code, detail, headers=getattr(exc, "headers", None))

    # Bugs (any other exception) are answered by FailureMiddleware: one log entry, the JSON 500, no re-raise.
