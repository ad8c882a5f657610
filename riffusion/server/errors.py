"""Every error the server answers is JSON ``{"detail": ...}`` with the right status and no traceback.

:class:`ApiError` is what routes and dependencies raise; :func:`install_error_handlers` turns it, FastAPI's
request validation errors, Starlette's HTTP errors (404, 405) and anything unexpected into that shape.
"""

from __future__ import annotations

import logging
import typing as T

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("riffusion.server")


class ApiError(Exception):
    """An error answered as JSON ``{"detail": ...}`` with ``status`` (and optional headers)."""

    def __init__(self, status: int, detail: T.Any, headers: T.Optional[dict[str, str]] = None):
        super().__init__(str(detail))
        self.status, self.detail, self.headers = status, detail, headers


def field_error(field: str, message: str, error_type: str = "value_error") -> ApiError:
    """A 422 naming one field of the JSON body, in the shape of a validation error."""
    return ApiError(422, [{"loc": ["body", field], "msg": message, "type": error_type}])


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    # No echo of the input (FastAPI's default includes it): prompts can be large and are not returned.
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error")
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON (see the module docstring)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
