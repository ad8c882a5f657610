"""Route dependencies: the running server's state, and request bodies parsed and checked against it.

Routes declare what they need (``state: StateDep``, ``body: InferenceBodyDep``) and FastAPI builds it per
request; errors raised here are answered by :mod:`riffusion.server.errors` like any other.
"""

from __future__ import annotations

import typing as T

from fastapi import Depends, Request

from riffusion.server.body import check_request, parse_json_body
from riffusion.server.schemas import GenerateBody, InferenceBody
from riffusion.server.state import ServerState


def get_state(request: Request) -> ServerState:
    """The :class:`ServerState` the app's lifespan built (the pipeline, its worker, the cache)."""
    return request.app.state.riffusion


StateDep = T.Annotated[ServerState, Depends(get_state)]


async def inference_body(request: Request, state: StateDep) -> InferenceBody:
    """The body of ``/run_inference/``, valid for this server and model."""
    body = await parse_json_body(request, InferenceBody, state.settings.max_body_bytes)
    check_request(state, body)
    return body


async def generate_body(request: Request, state: StateDep) -> GenerateBody:
    """The body of ``/api/v1/generate``, valid for this server and model."""
    body = await parse_json_body(request, GenerateBody, state.settings.max_body_bytes)
    check_request(state, body)
    return body


InferenceBodyDep = T.Annotated[InferenceBody, Depends(inference_body)]
GenerateBodyDep = T.Annotated[GenerateBody, Depends(generate_body)]
