"""The OpenAPI document (``/openapi.json``, shown at ``/docs``), with the request bodies declared.

The JSON bodies are parsed by hand (any Content-Type, see :mod:`riffusion.server.body`), so FastAPI cannot
see them; a route names its body model in ``openapi_extra={"x-body-model": NAME}`` and this module puts
that model's schema in the document, for readers of ``/docs`` and for schema-driven fuzzers.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from riffusion.server.schemas import GenerateBody, InferenceBody

BODY_MODELS: dict[str, type[BaseModel]] = {"InferenceBody": InferenceBody, "GenerateBody": GenerateBody}


def build_openapi(app: FastAPI) -> dict:
    """``app``'s OpenAPI document with each ``x-body-model`` replaced by a JSON request body."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            name = operation.pop("x-body-model", None) if isinstance(operation, dict) else None
            if not name:
                continue
            body_schema = BODY_MODELS[name].model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body_schema.pop("$defs", {}))
            components[name] = body_schema
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
            }
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi`'s document for ``app`` (built once, on first request)."""

    def openapi() -> dict:
        if not app.openapi_schema:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
